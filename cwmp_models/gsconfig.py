"""Grandstream XML configuration files: the channel for settings that have no TR-069 path.

A WP820 setting without a TR-069 path is changed by sending the phone a ``Download`` of FileType
``3 Vendor Configuration File`` that points at a file of this shape::

    <?xml version="1.0" encoding="UTF-8"?>
    <gs_provision version="1">
      <mac>c074ad000001</mac>          (optional: the phone refuses the file if it names another MAC)
      <config version="1">
        <P276>1</P276>
        ...
      </config>
    </gs_provision>

The file may be encrypted with the phone's "XML Config File Password" (P1359) the way ``openssl enc -aes-256-cbc``
does it: ``Salted__`` + 8-byte salt, then AES-256-CBC with PKCS#7 padding under a key and IV derived from the
password. Grandstream's guide shows the bare ``openssl enc -e -aes-256-cbc -k password`` command of its time, which
derived the key with EVP_BytesToKey over MD5; OpenSSL 1.1.0 changed that default to SHA-256 and later added PBKDF2.
Which one a given firmware expects is not documented, so the derivation is a parameter (default MD5, the era of the
guide). Unsalted files are not supported: the guide and every OpenSSL since 1.1.0 salt by default.

Parsing decisions (the reader serves both the simulator applying a pushed file and the ACS reading a phone's
uploaded one, and a misread security setting is worse than a refused file):

* Anything inside ``<config>`` that is not a ``P<number>`` element is an error, not skipped: a file in a shape we do not
  understand must not be half-applied.
* A P-value given twice is an error, not "last wins": two different admin passwords in one file is a defect or an
  attack, never an intent.
* P-value names are ``P`` followed by ASCII digits without leading zeros (``P01`` would alias ``P1``).
* Values are kept exactly as written (no whitespace stripping); the empty value is a value. Comments and processing
  instructions are dropped, so ``<P1>a<!-- x -->b</P1>`` reads as ``ab``, as any XML reader sees it.
* The document must be UTF-8 (whatever its declaration says) and carry no DOCTYPE.

Errors are :class:`ConfigFileError` with a short reason that never contains a password or a P-value's value: the
plaintext of these files holds the admin password, so parser messages quoting the document are never passed on.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from lxml import etree

MAX_CONFIG_SIZE = 1 << 20
AUTHENTICATION_PVALUE = "P1"

Kdf = Literal["md5", "sha256", "pbkdf2-sha256"]
KDFS: tuple[Kdf, ...] = get_args(Kdf)
DEFAULT_PBKDF2_ITERATIONS = 10000  # the count `openssl enc -pbkdf2` uses when -iter is not given

_MAGIC = b"Salted__"
_SALT_SIZE = 8
_HEADER_SIZE = len(_MAGIC) + _SALT_SIZE
_KEY_SIZE = 32
_IV_SIZE = 16
_BLOCK_SIZE = 16

_PVALUE_NAME = re.compile(r"P(?:0|[1-9][0-9]*)")
_MAC = re.compile(r"[0-9a-fA-F]{12}")
# Characters outside XML 1.0's Char production: a document cannot carry them, not even as character references.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
_FORMAT_VERSION = "1"


class ConfigFileError(ValueError):
    """A configuration file (or the request to build one) is unusable; ``reason`` says why, without secrets."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class GsConfig:
    """The content of one configuration file: the MAC it is addressed to (lower case, or None) and its P-values."""

    mac: str | None
    pvalues: dict[str, str] = field(default_factory=dict)


def build_config(pvalues: Mapping[str, str], *, mac: str | None = None) -> bytes:
    """The UTF-8 XML file setting ``pvalues``, in numeric P-value order so equal inputs give identical bytes."""
    for name, value in pvalues.items():
        _check_pvalue_name(name)
        if not isinstance(value, str):
            raise ConfigFileError(f"{name}: value must be text, not {type(value).__name__}")
        bad = _NOT_XML_CHAR.search(value)
        if bad is not None:
            raise ConfigFileError(f"{name}: value has a character XML 1.0 cannot carry at index {bad.start()}")
    root = etree.Element("gs_provision", version=_FORMAT_VERSION)
    if mac is not None:
        etree.SubElement(root, "mac").text = _normalise_mac(mac)
    config = etree.SubElement(root, "config", version=_FORMAT_VERSION)
    for name in sorted(pvalues, key=lambda n: int(n[1:])):
        etree.SubElement(config, name).text = pvalues[name]
    # Written by hand so the declaration reads exactly as in Grandstream's examples (lxml would use single quotes).
    return _XML_DECLARATION + etree.tostring(root, encoding="UTF-8", pretty_print=True)


def parse_config(data: bytes, *, max_size: int = MAX_CONFIG_SIZE) -> GsConfig:
    """Read a plaintext configuration file, refusing anything outside the format (see the module notes)."""
    if len(data) > max_size:
        raise ConfigFileError(f"file is larger than {max_size} bytes")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        # The message would quote the offending bytes, which may belong to a password.
        raise ConfigFileError(f"file is not valid UTF-8 (byte offset {err.start})") from None
    parser = etree.XMLParser(
        encoding="utf-8",
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_pis=True,
        remove_comments=True,
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as err:
        # lxml's message can quote document content; keep only the position.
        line, column = err.position
        raise ConfigFileError(f"not well-formed XML (line {line}, column {column})") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise ConfigFileError("file has a DOCTYPE (not allowed)")
    if root.tag != "gs_provision":
        raise ConfigFileError(f"root element is {_describe(root)}, not gs_provision")
    _check_version(root)
    _check_no_text(root.text, "gs_provision")
    mac_element: etree._Element | None = None
    config: etree._Element | None = None
    for child in root:
        _check_no_text(child.tail, "gs_provision")
        if child.tag == "mac" and mac_element is None:
            mac_element = child
        elif child.tag == "config" and config is None:
            config = child
        else:
            raise ConfigFileError(f"unexpected or repeated element {_describe(child)} in gs_provision")
    if config is None:
        raise ConfigFileError("gs_provision has no config element")
    mac = None if mac_element is None else _read_mac(mac_element)
    return GsConfig(mac=mac, pvalues=_read_pvalues(config))


def encrypt_config(
    plaintext: bytes,
    password: str,
    *,
    kdf: Kdf = "md5",
    iterations: int = DEFAULT_PBKDF2_ITERATIONS,
) -> bytes:
    """Encrypt as ``openssl enc -aes-256-cbc -salt -md <digest> [-pbkdf2 -iter N]`` does, with a fresh random salt.

    ``iterations`` is used only by ``pbkdf2-sha256``; EVP_BytesToKey derivations are single-round, as in OpenSSL.
    """
    salt = os.urandom(_SALT_SIZE)
    key, iv = _derive(password, salt, kdf, iterations)
    padder = padding.PKCS7(_BLOCK_SIZE * 8).padder()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    padded = padder.update(plaintext) + padder.finalize()
    return _MAGIC + salt + encryptor.update(padded) + encryptor.finalize()


def decrypt_config(
    blob: bytes,
    password: str,
    *,
    kdf: Kdf = "md5",
    iterations: int = DEFAULT_PBKDF2_ITERATIONS,
    max_size: int = MAX_CONFIG_SIZE,
) -> bytes:
    """The plaintext of an encrypted file; a wrong password or derivation raises :class:`ConfigFileError`.

    A wrong key shows as bad padding in all but about 1 in 256 cases; the rest are caught by requiring the plaintext
    to look like an XML document (valid UTF-8 starting with ``<``). ``max_size`` caps the plaintext, so a blob longer
    than any encryption of that many bytes is refused before any work is done.
    """
    if len(blob) > max_size + _HEADER_SIZE + _BLOCK_SIZE:
        raise ConfigFileError(f"encrypted file is larger than any encryption of {max_size} bytes")
    if not is_encrypted(blob):
        raise ConfigFileError("not an OpenSSL salted file (no 'Salted__' header)")
    if len(blob) < _HEADER_SIZE:
        raise ConfigFileError("encrypted file is truncated inside its salt")
    body = blob[_HEADER_SIZE:]
    if len(body) < _BLOCK_SIZE or len(body) % _BLOCK_SIZE:
        raise ConfigFileError("ciphertext is truncated (not a whole number of AES blocks)")
    key, iv = _derive(password, blob[len(_MAGIC) : _HEADER_SIZE], kdf, iterations)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    unpadder = padding.PKCS7(_BLOCK_SIZE * 8).unpadder()
    padded = decryptor.update(body) + decryptor.finalize()
    try:
        plaintext = unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise ConfigFileError("wrong password or key derivation, or corrupted file (bad padding)") from None
    if not _looks_like_xml(plaintext):
        raise ConfigFileError("wrong password or key derivation, or corrupted file (plaintext is not XML)")
    return plaintext


def is_encrypted(blob: bytes) -> bool:
    """Whether ``blob`` starts like an OpenSSL salted file rather than plaintext XML."""
    return blob.startswith(_MAGIC)


def check_authentication(cfg: GsConfig, admin_password: str) -> bool:
    """The "Authenticate Config File" (P240) rule: the file must carry P1 equal to the phone's admin password.

    Whether the rule applies (P240 on) is the caller's decision. The comparison is constant-time.
    """
    offered = cfg.pvalues.get(AUTHENTICATION_PVALUE)
    if offered is None:
        return False
    return hmac.compare_digest(_utf8(offered), _utf8(admin_password))


def _derive(password: str, salt: bytes, kdf: str, iterations: int) -> tuple[bytes, bytes]:
    secret = _password_bytes(password)
    if kdf == "pbkdf2-sha256":
        if iterations < 1:
            raise ConfigFileError("PBKDF2 iteration count must be at least 1")
        material = PBKDF2HMAC(
            algorithm=hashes.SHA256(), length=_KEY_SIZE + _IV_SIZE, salt=salt, iterations=iterations
        ).derive(secret)
    elif kdf in ("md5", "sha256"):
        material = _evp_bytes_to_key(kdf, secret, salt)
    else:
        raise ConfigFileError(f"unknown key derivation {kdf!r} (expected one of {', '.join(KDFS)})")
    return material[:_KEY_SIZE], material[_KEY_SIZE:]


def _evp_bytes_to_key(digest: str, secret: bytes, salt: bytes) -> bytes:
    """OpenSSL's EVP_BytesToKey with one round: D_i = H(D_{i-1} || password || salt), concatenated."""
    material = b""
    block = b""
    while len(material) < _KEY_SIZE + _IV_SIZE:
        block = hashlib.new(digest, block + secret + salt).digest()
        material += block
    return material[: _KEY_SIZE + _IV_SIZE]


def _password_bytes(password: str) -> bytes:
    """The password as OpenSSL sees it: its UTF-8 bytes. NUL cannot pass through OpenSSL's C strings."""
    if not isinstance(password, str):
        raise ConfigFileError("password must be text")
    if not password:
        raise ConfigFileError("password is empty")
    if "\x00" in password:
        raise ConfigFileError("password contains a NUL character")
    try:
        return password.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigFileError("password is not encodable as UTF-8") from None


def _utf8(text: str) -> bytes:
    # surrogatepass: a malformed string still compares (unequal) instead of raising.
    return text.encode("utf-8", "surrogatepass")


def _looks_like_xml(plaintext: bytes) -> bool:
    try:
        text = plaintext.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return text.lstrip("\ufeff \t\r\n").startswith("<")


def _check_pvalue_name(name: object) -> None:
    if not isinstance(name, str) or _PVALUE_NAME.fullmatch(name) is None:
        raise ConfigFileError(f"{_shorten(repr(name))} is not a P-value name (P followed by digits)")


def _normalise_mac(mac: str) -> str:
    if not isinstance(mac, str) or _MAC.fullmatch(mac) is None:
        raise ConfigFileError("mac must be 12 hexadecimal digits without separators")
    return mac.lower()


def _read_mac(element: etree._Element) -> str | None:
    if len(element):
        raise ConfigFileError("mac element has child elements")
    text = (element.text or "").strip()
    # An empty <mac/> is how templates say "any device".
    return _normalise_mac(text) if text else None


def _read_pvalues(config: etree._Element) -> dict[str, str]:
    _check_version(config)
    _check_no_text(config.text, "config")
    pvalues: dict[str, str] = {}
    for element in config:
        _check_no_text(element.tail, "config")
        name = str(element.tag)
        if _PVALUE_NAME.fullmatch(name) is None:
            raise ConfigFileError(f"element {_describe(element)} in config is not a P-value")
        if len(element):
            raise ConfigFileError(f"{name} has child elements; a P-value is text only")
        if name in pvalues:
            raise ConfigFileError(f"{name} is given more than once")
        pvalues[name] = element.text or ""
    return pvalues


def _check_version(element: etree._Element) -> None:
    version = element.get("version")
    if version is not None and version != _FORMAT_VERSION:
        raise ConfigFileError(f"{element.tag} version {_shorten(version)!r} is not supported (expected 1)")


def _check_no_text(text: str | None, where: str) -> None:
    if text is not None and text.strip():
        raise ConfigFileError(f"unexpected text directly inside {where}")


def _describe(element: etree._Element) -> str:
    return _shorten(str(element.tag))


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."

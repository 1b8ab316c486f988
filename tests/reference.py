"""Where the shared reference material is (official CWMP schemas, Grandstream data): ``../shared/reference`` beside
the checkout, as DEVELOPERS.md lays it out. A clone elsewhere (CI may clone anywhere) finds it through
``WP820_REFERENCE`` or the workplace's fixed location. Tests that need it fail with a clear message when it is
missing: they are never skipped."""

from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
_CANDIDATES = [
    os.environ.get("WP820_REFERENCE"),
    _REPO.parent / "shared" / "reference",
    Path("/work/shared/reference"),
]


def reference_dir() -> Path:
    for candidate in _CANDIDATES:
        if candidate and (Path(candidate) / "bbf").is_dir():
            return Path(candidate)
    tried = ", ".join(str(c) for c in _CANDIDATES if c)
    raise FileNotFoundError(f"shared reference material not found (tried {tried}); set WP820_REFERENCE")


REFERENCE = reference_dir()

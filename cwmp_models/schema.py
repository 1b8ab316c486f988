"""How each message field maps to XML: the small vocabulary the message classes use to describe themselves.

The message classes in :mod:`cwmp_models.messages` declare their fields with these descriptors, in schema order, and
the codec interprets them. Keeping the mapping as data next to the classes means one place states what the CWMP
schema requires (element names, order, length limits, array item types) and both directions of the codec obey it.
"""

from __future__ import annotations

from dataclasses import dataclass


class Kind:
    """Base of all field kinds. ``name`` is used in error messages."""

    name = "kind"


class ScalarKind(Kind):
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"ScalarKind({self.name})"


STR = ScalarKind("string")
INT = ScalarKind("int")
UINT = ScalarKind("unsignedInt")
BOOL = ScalarKind("boolean")
DATETIME = ScalarKind("dateTime")


class ValueKind(Kind):
    """A ParameterValueStruct ``Value``: text whose type travels in ``xsi:type``."""

    name = "Value"


VALUE = ValueKind()


@dataclass(frozen=True)
class StructKind(Kind):
    """A nested element whose children are the fields of ``cls``."""

    cls: type

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.cls.__name__


@dataclass(frozen=True)
class ArrayKind(Kind):
    """A SOAP-encoded array: a wrapper element with ``soap-enc:arrayType="<array_type>[N]"`` around repeated items."""

    item_tag: str
    item: Kind
    array_type: str
    item_max_len: int | None = None
    max_items: int | None = None

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"{self.array_type}[]"


@dataclass(frozen=True)
class RepeatedKind(Kind):
    """An element repeated in place with no wrapper (e.g. ChangeDUState ``Operations``)."""

    item: Kind

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"{self.item.name}*"


@dataclass(frozen=True)
class ChoiceKind(Kind):
    """A struct whose concrete class is named by ``xsi:type`` (ChangeDUState operations)."""

    choices: tuple[tuple[str, type], ...]  # (schema type name, class)

    @property
    def name(self) -> str:  # type: ignore[override]
        return "|".join(name for name, _ in self.choices)


@dataclass(frozen=True)
class Field:
    attr: str
    tag: str
    kind: Kind
    max_len: int | None = None
    # minOccurs=0 in the schema: omitted on output when the attribute is None, None on input when absent.
    optional: bool = False

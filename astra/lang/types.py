"""The type language: scalars, optionals, lists and fixed-size vectors."""

from __future__ import annotations

import attrs

SCALARS = ("bool", "int32", "int64", "float32", "float64", "string", "timestamp", "duration")
INTEGERS = ("int32", "int64")
FLOATS = ("float32", "float64")
NUMERICS = INTEGERS + FLOATS


@attrs.frozen
class Type:
    """A value type. `name` is a scalar name, "list" or "vector"; `optional` marks `T?` (may be null)."""

    name: str
    optional: bool = False
    item: Type | None = None  # element type of list / vector
    size: int | None = None  # vector length

    # -- constructors -------------------------------------------------------------
    @staticmethod
    def list_of(item: Type, optional: bool = False) -> Type:
        return Type("list", optional, item)

    @staticmethod
    def vector(size: int, item: Type | None = None, optional: bool = False) -> Type:
        return Type("vector", optional, item or FLOAT32, size)

    # -- predicates ---------------------------------------------------------------
    @property
    def is_numeric(self) -> bool:
        return self.name in NUMERICS

    @property
    def is_integer(self) -> bool:
        return self.name in INTEGERS

    @property
    def is_float(self) -> bool:
        return self.name in FLOATS

    @property
    def is_orderable(self) -> bool:
        return self.name in (*NUMERICS, "string", "timestamp", "duration", "bool")

    @property
    def is_null(self) -> bool:
        """The type of the literal `null` before it meets another type."""
        return self.name == "null"

    def nullable(self, optional: bool = True) -> Type:
        return attrs.evolve(self, optional=optional)

    def non_null(self) -> Type:
        return attrs.evolve(self, optional=False)

    def accepts(self, other: Type) -> bool:
        """Can a value of `other` be stored where `self` is declared?"""
        if other.is_null:
            return self.optional
        if other.optional and not self.optional:
            return False
        if self.name != other.name:
            # widening numeric assignment: int32 -> int64, float32 -> float64, ints -> floats
            return widen(other.non_null(), self.non_null()) == self.non_null()
        if self.name == "list":
            return self.item.accepts(other.item)  # type: ignore[union-attr]
        if self.name == "vector":
            return self.size == other.size
        return True

    def __str__(self) -> str:
        if self.name == "list":
            base = f"list<{self.item}>"
        elif self.name == "vector":
            base = f"vector<{self.item}, {self.size}>"
        else:
            base = self.name
        return base + ("?" if self.optional else "")


BOOL, INT32, INT64 = Type("bool"), Type("int32"), Type("int64")
FLOAT32, FLOAT64, STRING = Type("float32"), Type("float64"), Type("string")
TIMESTAMP, DURATION, NULL = Type("timestamp"), Type("duration"), Type("null", optional=True)

_NUMERIC_RANK = {"int32": 0, "int64": 1, "float32": 2, "float64": 3}


def widen(a: Type, b: Type) -> Type | None:
    """The common supertype of two types (ignoring optionality beyond propagating it), or None."""
    optional = a.optional or b.optional
    if a.is_null:
        return b.nullable()
    if b.is_null:
        return a.nullable()
    if a.name == b.name and a.item == b.item and a.size == b.size:
        return a.nullable(optional)
    if a.is_numeric and b.is_numeric:
        hi = max(a.name, b.name, key=_NUMERIC_RANK.__getitem__)
        # int64 mixed with float32 must not lose integer precision silently: go to float64
        if {a.name, b.name} == {"int64", "float32"}:
            hi = "float64"
        return Type(hi, optional)
    return None


def parse_type_name(name: str) -> Type | None:
    """A scalar type from its name, or None."""
    return Type(name) if name in SCALARS else None


def parse_type(text: str) -> Type:
    """Inverse of `str(Type)`: "list<float64>?" -> Type. Used to read plans back from JSON."""
    text = text.strip()
    optional = text.endswith("?")
    if optional:
        text = text[:-1]
    if text.startswith("list<") and text.endswith(">"):
        return Type.list_of(parse_type(text[5:-1]), optional)
    if text.startswith("vector<") and text.endswith(">"):
        item, size = text[7:-1].rsplit(",", 1)
        return Type.vector(int(size), parse_type(item), optional)
    if text not in (*SCALARS, "null"):
        raise ValueError(f"not a type: {text!r}")
    return Type(text, optional or text == "null")

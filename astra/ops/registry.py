"""What a scalar operator is, and the value representations its lowerings work on.

Online (numpy) a column is a `Vec`: `values` plus a boolean `valid` mask.  Slots where `valid`
is False hold a harmless filler (0, "", False) so kernels never see garbage or warn.
Timestamps and durations are int64 microseconds in numpy and in references; Polars uses
`Datetime("us")` and `Duration("us")`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from astra.lang.types import Type


class TypeRuleError(Exception):
    """A type rule's rejection: message, the offending argument's index (or None), a hint, and the
    diagnostic code the checker reports it under."""

    def __init__(self, message: str, arg: int | None = None, help: str = "", code: str = "E0201"):
        super().__init__(message)
        self.message, self.arg, self.help, self.code = message, arg, help, code


@attrs.frozen
class Vec:
    """A column of values with a validity mask (False = null)."""

    values: Any  # numpy.ndarray
    valid: Any  # numpy.ndarray[bool]

    def __len__(self) -> int:
        return len(self.valid)


@attrs.frozen(kw_only=True)
class ScalarOp:
    """A row-wise operator or function.

    `null_policy` is "strict" when a null argument makes the result null (the engines then apply
    the masks; `numpy` sees only values and returns values or (values, extra_valid)), or "custom"
    when the op handles nulls itself (`??`, `if`, `and`, `or`, `is_null`): its `numpy` then takes
    and returns `Vec`s, and its `reference` receives Nones.
    """

    name: str
    arity: tuple[int, int]  # min, max number of arguments
    infer: Callable[[tuple[Type, ...]], Type]
    reference: Callable[..., object]  # (out: Type, *args) -> value; None is null
    polars: Callable[..., Any]  # (out: Type, *args: pl.Expr) -> pl.Expr
    numpy: Callable[..., Any]
    null_policy: str = "strict"
    literal_args: tuple[int, ...] = ()  # argument positions that must be literals; lowerings get Python values
    # checks the literal arguments' values ({position: value}) once the types fit, raising TypeRuleError
    check_literals: Callable[[dict[int, object]], None] | None = None
    # the single-entity plan's lowering on Python/numpy scalars, for operators whose numpy lowering
    # costs more on a one-element array than the arithmetic itself: (out, *literal argument values)
    # -> a function of the other arguments' values returning the value (None is null; a "custom"
    # op receives Nones), made once per compiled plan.  Only where it gives the numpy lowering's
    # bits: tests/ops/test_scalar_one.py checks each against it.  None: numpy on one-element arrays.
    one: Callable[..., Callable[..., object]] | None = None
    # the single-entity plan's inline form of a one-argument operator, where even `one`'s call
    # costs more than the arithmetic: (out, x, x_float, const, *literal argument values) -> a
    # Python expression over the variable named `x` (never None for a strict op; `x_float` spells
    # it as a Python float), its constants spelt by `const` (a repr, or a bound name), or None to
    # use `one`.  The value is already what `codegen.converter` makes of `out`'s dtype, so the plan
    # converts it no further.  tests/ops/test_scalar_inline.py holds each to the numpy bits.
    inline: Callable[..., str | None] | None = None
    doc: str = ""


SCALARS: dict[str, ScalarOp] = {}


def register(op: ScalarOp) -> ScalarOp:
    """Add an operator to the registry; a name can be registered once."""
    if op.name in SCALARS:
        raise ValueError(f"scalar op {op.name!r} registered twice")
    SCALARS[op.name] = op
    return op


class LazyModule:
    """A stand-in for a heavy module (numpy), imported on first attribute access.

    The first access also rebinds the name in the owning module's globals to the real module, so
    hot paths pay nothing after it.  `astra compile` never touches numpy and never imports it.
    """

    def __init__(self, module: str, alias: str, namespace: dict):
        self._module, self._alias, self._namespace = module, alias, namespace

    def __getattr__(self, attr: str):
        import importlib

        module = importlib.import_module(self._module)
        self._namespace[self._alias] = module
        return getattr(module, attr)

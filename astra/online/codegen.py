"""Lower a service (or a `where` filter) to straight-line, vectorised numpy source code.

A service gets two functions in one module: `evaluate` (a batch, numpy arrays) and `evaluate_one`
(one entity, Python scalars, for `Store.get` on tiny batches); both call kernels that live beside
each operator, and the property test holds them to the same bits.

Every value is a `Vec` (values + validity).  Strict operators get plain value arrays and the
generated code intersects the masks; `custom` operators take and return `Vec`s.  No user text is
spliced into the source: variables are generated names (`x3`, `f1`), registry objects and types
are bound to generated names in the module's namespace, and literals are emitted with `repr`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path

import attrs
import jinja2
import numpy as np

import astra.ops.functions
import astra.ops.scalars  # noqa: F401  (registers the operators)
from astra.lang.types import Type
from astra.online.errors import OnlineError, UnknownServiceError
from astra.online.layout import Layout, plan_layout
from astra.ops.aggregations import AGGREGATIONS
from astra.ops.dtypes import filler, numpy_dtype
from astra.ops.registry import SCALARS, Vec
from astra.plan import ir
from astra.plan.fit import require_fitted

_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                          trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                          undefined=jinja2.StrictUndefined)


def _const(n: int, value, t: Type) -> Vec:
    """A literal broadcast to the batch (null literals are invalid everywhere)."""
    if value is None:
        return Vec(np.full(n, filler(t), dtype=numpy_dtype(t)), np.zeros(n, bool))
    if t.name == "list":
        out = np.empty(n, object)
        out[:] = [tuple(value)] * n
        return Vec(out, np.ones(n, bool))
    return Vec(np.full(n, value, dtype=numpy_dtype(t)), np.ones(n, bool))


def _strict(result, valid) -> Vec:
    """Wrap a strict op's result: (values) or (values, extra validity)."""
    if isinstance(result, tuple):
        values, extra = result
        return Vec(values, valid & extra)
    return Vec(result, valid)


def _finish(x: Vec, dt: np.dtype, default, is_list: bool) -> Vec:
    """A feature's value: converted to its declared dtype, nulls replaced by its default."""
    values = x.values
    if values.dtype != dt:
        values = values.astype(dt)
    elif default is None:
        return x
    if default is None or x.valid.all():
        return Vec(values, x.valid)
    values = values.copy()
    for j in np.flatnonzero(~x.valid).tolist():  # defaults fill nulls only: a rare path
        values[j] = tuple(default) if is_list else default
    return Vec(values, np.ones(len(values), bool))


class _Emitter:
    """Emit lines for expressions, naming every node once (hash-consed nodes are computed once)."""

    def __init__(self, layout: Layout | None, ns: dict):
        self.layout, self.ns, self.lines = layout, ns, []
        self.memo: dict[object, str] = {}
        self.bound: dict[int, str] = {}
        self.prepares: dict[tuple[int, int], list[int]] = {}  # (hop or 0, table) -> window offsets (0 first)
        self.sessions: dict[int, list[tuple[int, int]]] = {}  # table -> session windows (input, gap)
        self.features: dict[str, str] = {}

    def bind(self, obj, prefix: str) -> str:
        """A generated name for a registry object, type or constant in the module namespace."""
        key = id(obj)
        if key not in self.bound:
            name = f"{prefix}{len(self.bound)}"
            self.ns[name], self.bound[key] = obj, name
        return self.bound[key]

    def literal(self, value) -> str:
        if value is None or isinstance(value, bool | int | str) or (isinstance(value, float) and math.isfinite(value)):
            return repr(value)
        if isinstance(value, tuple) and all(v is None or isinstance(v, bool | int | str) for v in value):
            return repr(value)
        holder = [value]  # bind the value itself (e.g. nan, inf, tuples of floats)
        self.ns.setdefault("_keep", []).append(holder)
        return self.bind(value, "K")

    def line(self, code: str) -> str:
        var = f"x{len(self.lines)}"
        self.lines.append(f"{var} = {code}")
        return var

    def expr(self, e: ir.Expr) -> str:
        if e in self.memo:
            return self.memo[e]
        var = self._expr(e)
        self.memo[e] = var
        return var

    def _expr(self, e: ir.Expr) -> str:
        """The nodes both plans spell alike; the rest is `_leaf`, per plan."""
        match e:
            case ir.RequestInput():
                return self.line(f"req[{f'{e.request}.{e.field}'!r}]")
            case ir.EntityKey():  # the store passes the queried keys beside the request inputs
                return self.line(f"req[{entity_key_input(e)!r}]")
            case ir.FeatureRef():
                return self.features[e.feature]
            case ir.AsOf():
                return self._asof(e)
            case ir.Aggregate():
                return self._aggregate(e, self._query(e), *self._window(e))
            case ir.Apply():
                return self._apply(e)
        return self._leaf(e)

    def _leaf(self, e: ir.Expr) -> str:
        match e:
            case ir.Const():
                return self.line(f"_const(n, {self.literal(e.value)}, {self.bind(e.type, 'T')})")
            case ir.Now():
                return self.line("Vec(q.t, ones)")
            case ir.Column():
                return self.line(f"cols[{e.name!r}]")
        raise TypeError(f"online codegen: unexpected node {type(e).__name__}")

    def _aggregate(self, e: ir.Aggregate, q: str, ti: int, inp: int, j: int) -> str:
        agg = self.bind(AGGREGATIONS[e.op].online, "A")
        return self.line(f"{agg}({q}.view({ti}, {inp}, {j}), {self.bind(e.type, 'T')}, {e.param!r})")

    @staticmethod
    def _query(e: ir.Aggregate) -> str:
        """The batch an aggregation reads: a hopping window's is asked at the hop boundary."""
        return "q" if e.hop is None else f"q.at({int(e.hop)})"

    def register(self, features) -> None:
        """Every sliding and hopping window of `features` registered first, so that session
        windows, whose bounds follow a table's offsets, get their final slot numbers."""
        for f in features:
            for n in ir.walk(f.expr):
                if isinstance(n, ir.Aggregate) and n.gap is None:
                    self._window(n)

    def _window(self, e: ir.Aggregate) -> tuple[int, int, int]:
        """An aggregation's table, input and window slot; the window is registered for `prepare`
        (sessions after every offset of the table: `register` runs first)."""
        ti = self.layout.index[e.key]
        inp = self.layout.tables[ti].input(e.column, e.where)
        offsets = self.prepares.setdefault((e.hop or 0, ti), [0])
        if e.gap is not None:  # sessions are formed from the rows of the filter alone, nulls included (W4)
            key = (self.layout.tables[ti].input(None, e.where), int(e.gap))
            sessions = self.sessions.setdefault(ti, [])
            if key not in sessions:
                sessions.append(key)
            return ti, inp, len(offsets) + sessions.index(key)
        if e.window is not None and e.window not in offsets:
            offsets.append(e.window)
        return ti, inp, -1 if e.window is None else offsets.index(e.window)

    def prepare_lines(self) -> list[tuple[str, int, str, str]]:
        """(batch, table, offsets, sessions) of every `prepare` call, as template inputs."""
        out = []
        for hop, ti in sorted(self.prepares):
            q = "q" if not hop else f"q.at({hop})"
            sessions = tuple(self.sessions.get(ti, ())) if not hop else ()
            out.append((q, ti, self.bind(np.array(self.prepares[hop, ti], np.int64), "K"), repr(sessions)))
        return out

    def _asof(self, e: ir.AsOf) -> str:
        ti = self.layout.index[e.key]
        self.prepares.setdefault((0, ti), [0])
        return self.line(f"q.asof({ti}, {e.column!r})")

    def _apply(self, e: ir.Apply) -> str:
        op = SCALARS[e.op]
        fn, out = self.bind(op.numpy, "O"), self.bind(e.type, "T")
        if op.null_policy == "custom":
            args = [self.expr(a) for a in e.args]
            return self.line(f"{fn}({out}, {', '.join(args)})")
        vals, masks = [], []
        for i, a in enumerate(e.args):
            if i in op.literal_args:
                vals.append(self.literal(a.value))
            else:
                v = self.expr(a)
                vals.append(f"{v}.values")
                masks.append(f"{v}.valid")
        valid = " & ".join(masks) if masks else "ones"
        return self.line(f"_strict({fn}({out}, {', '.join(vals)}), {valid})")


def entity_key_input(e: ir.EntityKey) -> str:
    """The name under which an entity key reaches a compiled plan among its request inputs
    (`key:` cannot start a request name, so it never meets one)."""
    return f"key:{e.entity}.{e.field}"


class _OneEmitter(_Emitter):
    """Emit the single-entity plan: every value a Python scalar (or numpy scalar), None for null.

    Aggregations call their `online_one` kernel on `astra.online.single.Single`; scalar operators
    run their numpy lowering on one-element arrays, so both plans share one implementation, unless
    they declare a scalar (`one`) or inline form.  `native` names the variables whose value is
    already the Python value `converter` gives for a dtype (a feature's is not converted again)."""

    def __init__(self, layout: Layout | None, ns: dict):
        super().__init__(layout, ns)
        self.native: dict[str, np.dtype] = {}

    def is_native(self, var: str, dt: np.dtype) -> bool:
        have = self.native.get(var)  # (never `dt == None`: numpy reads None as float64)
        return have is not None and have == dt

    def _leaf(self, e: ir.Expr) -> str:
        match e:
            case ir.Const():
                value = tuple(e.value) if e.type.name == "list" and e.value is not None else e.value
                return self.line(self.literal(value))
            case ir.Now():
                return "q.t"
        raise TypeError(f"online codegen (single entity): unexpected node {type(e).__name__}")

    def _aggregate(self, e: ir.Aggregate, q: str, ti: int, inp: int, j: int) -> str:
        agg = self.bind(AGGREGATIONS[e.op].online_one, "A")
        return self.line(f"{agg}({q}, {ti}, {inp}, {j}, {self.bind(e.type, 'T')}, {e.param!r})")

    def _apply(self, e: ir.Apply) -> str:
        op = SCALARS[e.op]
        var = self._inline(e, op) if op.inline is not None else None
        if var is not None:  # straight-line Python
            return var
        if op.one is not None:  # its scalar lowering: no one-element arrays
            return self._apply_one(e, op)
        fn, out = self.bind(op.numpy, "O"), self.bind(e.type, "T")
        args, nulls = [], []
        for i, a in enumerate(e.args):
            if i in op.literal_args:
                args.append(self.literal(a.value))
                continue
            v, dt = self.expr(a), self.bind(numpy_dtype(a.type), "D")
            if op.null_policy == "custom":
                f = self.literal(filler(a.type))
                args.append(f"Vec(_arr({f} if {v} is None else {v}, {dt}), np.array([{v} is not None]))")
            else:
                args.append(f"_arr({v}, {dt})")
                nulls.append(f"{v} is None")
        call = f"{fn}({out}, {', '.join(args)})"
        if op.null_policy == "custom":
            return self.line(f"_custom1({call})")
        return self.line(f"None if {' or '.join(nulls)} else _strict1({call})" if nulls else f"_strict1({call})")

    def _apply_one(self, e: ir.Apply, op) -> str:
        literals = [a.value for i, a in enumerate(e.args) if i in op.literal_args]
        fn = self.bind(op.one(e.type, *literals), "S")  # specialised to its literals once
        args = [self.expr(a) for i, a in enumerate(e.args) if i not in op.literal_args]
        call = f"{fn}({', '.join(args)})"
        if op.null_policy == "custom" or not args:
            return self.line(call)
        return self.line(f"None if {' or '.join(f'{v} is None' for v in args)} else {call}")

    def _inline(self, e: ir.Apply, op) -> str | None:
        """The operator's inline expression on its one argument, as a line (None: it has none here)."""
        literals = [a.value for i, a in enumerate(e.args) if i in op.literal_args]
        (arg,) = (a for i, a in enumerate(e.args) if i not in op.literal_args)
        x = self.expr(arg)
        x_float = x if self.is_native(x, np.dtype(np.float64)) else f"float({x})"
        code = op.inline(e.type, x, x_float, self.literal, *literals)
        if code is None:
            return None
        if op.null_policy != "custom":
            code = f"None if {x} is None else {code}"
        var = self.line(code)
        self.native[var] = numpy_dtype(e.type)
        return var


def _arr(x, dt: np.dtype) -> np.ndarray:
    """A single-entity value as a one-element array, as the batch plan would hold it (numpy
    scalars keep their dtype; Python values take the type's numpy dtype)."""
    if isinstance(x, np.generic):
        return x.reshape(1)
    if dt.kind == "O":
        a = np.empty(1, object)
        a[0] = x
        return a
    return np.array([x], dt)


def _strict1(r):
    """A strict operator's result on one-element arrays -> its value (None: null)."""
    if type(r) is tuple:
        r, extra = r
        if not extra[0]:
            return None
    return r[0]


def _custom1(r: Vec):
    """A null-handling operator's result (a one-element Vec) -> its value (None: null)."""
    return r.values[0] if r.valid[0] else None


def _wrap_int(bits: int) -> Callable:
    half, mask = 1 << (bits - 1), (1 << bits) - 1
    return lambda x: ((int(x) + half) & mask) - half


@functools.lru_cache(maxsize=64)
def converter(dt: np.dtype) -> Callable:
    """Python value -> the Python value `np.array([x]).astype(dt).tolist()[0]` gives (a feature's
    declared dtype, applied by the single-entity plan as `_finish` does for batches)."""
    if dt.kind == "O":
        return lambda x: x
    if dt.kind == "T":
        return str
    if dt.kind == "b":
        return bool
    if dt.kind == "f":
        return float if dt.itemsize == 8 else (lambda x: float(dt.type(x)))
    if dt.kind == "i":
        return _wrap_int(dt.itemsize * 8)
    return lambda x: np.array([x]).astype(dt).tolist()[0]


def _namespace() -> dict:
    return {"np": np, "Vec": Vec, "_const": _const, "_strict": _strict, "_finish": _finish,
            "_arr": _arr, "_strict1": _strict1, "_custom1": _custom1}


def _load(source: str, ns: dict, name: str, filename: str) -> Callable:
    exec(compile(source, filename, "exec"), ns)
    return ns[name]


@attrs.frozen
class CompiledService:
    """A service lowered to numpy: `evaluate(q, req) -> {output name: Vec}`; `source_code` shows it."""

    service: ir.Service
    source_code: str
    evaluate: Callable
    tables: tuple[int, ...]  # tables the service reads
    requests: tuple[tuple[str, Type], ...]  # "request.field" and type, for every request input it reads
    output_types: tuple[tuple[str, Type], ...]
    # evaluate_one(q: astra.online.single.Single, req: {name: value}) -> tuple of output values (None: null);
    # None when some type has no scalar form (vectors): single entities then use `evaluate`
    evaluate_one: Callable | None = None
    # per output: the tables it reads, directly or through the features it references (its
    # missing flag: the entity has no slot in any of them; empty: computed from requests/constants)
    output_tables: tuple[tuple[int, ...], ...] = ()


@functools.lru_cache(maxsize=256)
def compile_service(plan: ir.Plan, service: str, version: int,
                    services: tuple[str, ...] | None = None) -> CompiledService:
    """Generate and load the numpy code computing a service's outputs for a batch, against the
    table layout of a store built for `services` (None: every feature of the plan)."""
    try:
        svc = plan.service(service, version)
    except KeyError:
        have = ", ".join(s.id for s in plan.services) or "none"
        raise UnknownServiceError(f"no service {service}@v{version} in the plan; services: {have}") from None
    if services is not None and svc.id not in services:
        raise UnknownServiceError(f"the store was built for {', '.join(services)}, not {svc.id}")
    require_fitted(plan, svc, OnlineError)  # a transformed service never runs without its statistics
    layout = plan_layout(plan, services)
    ns = _namespace()
    em = _Emitter(layout, ns)
    requests: dict[str, Type] = {}
    reads: dict[str, frozenset[int]] = {}  # feature -> tables it reads, transitively
    em.register(plan.closure(tuple(o.feature for o in svc.outputs)))
    for f in plan.closure(tuple(o.feature for o in svc.outputs)):
        tis: set[int] = set()
        for node in ir.walk(f.expr):
            if isinstance(node, ir.RequestInput):
                requests[f"{node.request}.{node.field}"] = node.type
            elif isinstance(node, ir.EntityKey):
                requests[entity_key_input(node)] = node.type
            elif isinstance(node, ir.AsOf | ir.Aggregate):
                tis.add(layout.index[node.key])
            elif isinstance(node, ir.FeatureRef):
                tis |= reads[node.feature]
        reads[f.id] = frozenset(tis)
        x = em.expr(f.expr)
        default = em.literal(f.default)
        em.features[f.id] = var = f"f{len(em.features)}"
        dt = em.bind(numpy_dtype(f.type), "D")
        em.lines.append(f"{var} = _finish({x}, {dt}, {default}, {f.type.name == 'list'})")
    outputs = [(repr(o.name), em.features[o.feature]) for o in svc.outputs]
    tables = sorted({ti for _, ti in em.prepares})
    one = _emit_one(plan, svc, layout, ns, em.bound)
    source = _ENV.get_template("service.py.j2").render(
        service_id=repr(svc.id), body=em.lines, outputs=outputs, prepares=em.prepare_lines(),
        tables=[(ti, repr((layout.tables[ti].key.source, layout.tables[ti].key.columns))) for ti in tables],
        one=one)
    fn = _load(source, ns, "evaluate", f"<astra service {svc.id}>")
    types = tuple((o.name, plan.feature(o.feature).type) for o in svc.outputs)
    return CompiledService(svc, source, fn, tuple(tables), tuple(requests.items()), types,
                           ns["evaluate_one"] if one is not None else None,
                           tuple(tuple(sorted(reads[o.feature])) for o in svc.outputs))


def _emit_one(plan: ir.Plan, svc: ir.Service, layout: Layout, ns: dict, bound: dict) -> dict | None:
    """The template inputs of the single-entity plan (None when a type has no scalar form)."""
    em = _OneEmitter(layout, ns)
    em.bound = bound  # one namespace for both plans: share the generated names
    em.register(plan.closure(tuple(o.feature for o in svc.outputs)))
    for f in plan.closure(tuple(o.feature for o in svc.outputs)):
        if any(getattr(node, "type", None) is not None and node.type.name == "vector" for node in ir.walk(f.expr)):
            return None
        x = em.expr(f.expr)
        dt = numpy_dtype(f.type)
        is_list = f.type.name == "list"
        conv = converter(dt)
        if f.default is None:
            default = "None"
        else:  # converted once here, as `_finish` converts it for every batch
            default = em.literal(tuple(f.default) if is_list else conv(np.array([f.default]).astype(dt)[0]))
        if em.is_native(x, dt) and f.default is None:  # already its Python value: no line at all
            em.features[f.id] = x
            continue
        em.features[f.id] = var = f"f{len(em.features)}"
        em.native[var] = dt
        value = x if em.is_native(x, dt) else f"{em.bind(conv, 'C')}({x})"
        em.lines.append(f"{var} = {default} if {x} is None else {value}")
    return {"body": em.lines, "outputs": [em.features[o.feature] for o in svc.outputs],
            "prepares": em.prepare_lines()}


def compile_where(where: ir.Expr, label: str = "") -> Callable[[dict[str, Vec], int], Vec]:
    """A source-row filter as a function of the batch's columns (Vecs) and its length."""
    ns = _namespace()
    em = _Emitter(None, ns)
    result = em.expr(where)
    source = _ENV.get_template("where.py.j2").render(table=repr(label), input="", body=em.lines, result=result)
    return _load(source, ns, "where", "<astra where>")

"""IR back to readable text: for `astra explain`, the lock file and diagnostics."""

from __future__ import annotations

from astra.ops.aggregations import AGGREGATIONS
from astra.plan import ir
from astra.times import format_duration

_INFIX = {"+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "and", "or", "??", "in"}
_VECTOR_INFIX = {"vector+": "+", "vector-": "-", "vector*": "*", "number*vector": "*"}


def duration(us: int) -> str:
    """Microseconds in the largest exact unit, as the formatter writes them: 604800000000 -> "7d"."""
    return format_duration(us)


def window(w: int | ir.Aggregate | None) -> str:
    """The effective window written out (an aggregate's, or a sliding width / None for lifetime)."""
    if isinstance(w, ir.Aggregate):
        a = w
        match ir.window_kind(a):
            case "hopping":
                return (f"[h - {duration(a.window)}, h), h = t rounded down to a multiple of {duration(a.hop)} "
                        "since the epoch (UTC)")
            case "tumbling":
                return (f"[h - {duration(a.window)}, h), h = t rounded down to a multiple of {duration(a.hop)} "
                        "since the epoch (UTC): the last complete period")
            case "session":
                return (f"[s, t), s = the start of the latest session (rows less than {duration(a.gap)} apart; "
                        "open or closed; empty with no row before t)")
        w = a.window
    return "(-inf, t)" if w is None else f"[t - {duration(w)}, t)"


def window_arg(a: ir.Aggregate) -> str | None:
    """An aggregate's window argument as written in `.feat` (None for lifetime)."""
    match ir.window_kind(a):
        case "hopping":
            return f"{duration(a.window)} every {duration(a.hop)}"
        case "tumbling":
            return f"tumbling {duration(a.window)}"
        case "session":
            return f"session {duration(a.gap)}"
    return None if a.window is None else duration(a.window)


def expr(e: ir.Expr) -> str:
    """An IR expression as `.feat`-like text."""
    match e:
        case ir.Const(value=v, type=t):
            if t.name == "duration":
                return duration(v)
            if v is None:
                return "null"
            if isinstance(v, bool):
                return "true" if v else "false"
            if isinstance(v, tuple):
                return "[" + ", ".join(expr(ir.Const(value=x, type=t.item)) for x in v) + "]"
            return repr(v) if not isinstance(v, str) else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        case ir.Now():
            return "now()"
        case ir.Column(name=n):
            return n
        case ir.RequestInput(request=r, field=f):
            return f"{r}.{f}"
        case ir.EntityKey(entity=n, field=f):
            return f"{n}.{f}"
        case ir.AsOf(key=k, column=c):
            return f"{k.source}.{c}"
        case ir.FeatureRef(feature=f):
            return f
        case ir.Aggregate():
            target = e.key.source + (f".{e.column}" if e.column else "")
            if e.where is not None:
                target += f" where {expr(e.where)}"
            args = [target]
            if e.param is not None and AGGREGATIONS[e.op].takes_param:  # as written: `1h`, `0.9`, `[1, 2]`
                args.append(AGGREGATIONS[e.op].param_text(e.param))
            if window_arg(e) is not None:
                args.append(window_arg(e))
            return f"{e.op}({', '.join(args)})"
        case ir.Apply(op="assignment", args=(_, ir.Const(value=spec))):
            return f"assignment({experiment_text(spec)})"
        case ir.Apply(op=op, args=args):
            parts = [expr(a) for a in args]
            if op in _INFIX:
                return f"({parts[0]} {op} {parts[1]})"
            if op in _VECTOR_INFIX:  # element-wise vector arithmetic, a number times a vector
                return f"({parts[0]} {_VECTOR_INFIX[op]} {parts[1]})"
            if op == "neg":
                return f"-{parts[0]}"
            if op == "not":
                return f"not {parts[0]}"
            if op == "if":
                return f"(if {parts[0]} then {parts[1]} else {parts[2]})"
            if op == "cast":
                return f"({parts[0]} as {e.type.non_null() if not args[0].type.optional else e.type})"
            if op == "fit:impute":  # the method is a word: `impute(x, median)`
                return f"impute({parts[0]}, {args[1].value})"
            name = "length" if op == "list_length" else op.removeprefix("fit:")  # an unbound fitted call
            return f"{name}({', '.join(parts)})"
    raise TypeError(e)


def null_reason(e: ir.Expr) -> str:
    """Why an optional expression may be null, in words, from the first nullable leaf found."""
    for n in ir.walk(e):
        if not n.type.optional:
            continue
        match n:
            case ir.Aggregate():
                return f"`{n.op}` of a window with no values is null"
            case ir.AsOf():
                return f"the as-of lookup `{expr(n)}` finds no row before the first update"
            case ir.Apply(op="/"):
                return "division by zero gives null"
            case ir.Apply(op=("log" | "sqrt")):
                return f"`{n.op}` is null outside its domain"
            case ir.Apply(op=("cosine" | "normalize")):
                return f"`{n.op}` of a zero vector is null"
            case ir.Apply(op="fit:quantile_bucketize" | "fitted.bins"):
                return "`quantile_bucketize` of NaN is null"
            case ir.Const(value=None):
                return "`null` literal"
            case ir.RequestInput() | ir.FeatureRef() | ir.Column():
                return f"`{expr(n)}` is `{n.type}`"
    return "its type is optional"


def experiment_text(spec: str) -> str:
    """An experiment as its assignment spec identifies it (renaming one does not change it)."""
    import json

    d = json.loads(spec)
    return f"experiment in layer {d['layer']}, salt {json.dumps(d['salt'], ensure_ascii=False)}"


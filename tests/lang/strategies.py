"""Hypothesis strategies for random `.feat` ASTs that are valid by syntax (not by type or scope).

Every form the grammar can produce is reachable: all declaration kinds, every expression form and
operator, every type shape, every literal kind, metadata in any combination. Values stay inside
what the parser accepts: non-negative literals in expressions (a minus is a `Unary`), durations
in whole seconds, names that are not keywords. Spans are left out: AST equality ignores them.
"""

from __future__ import annotations

import re

from hypothesis import strategies as st

from astra.lang import ast
from astra.lang.lower import INT64_MAX, KEYWORDS
from astra.lang.types import SCALARS, Type

# `list`, `vector` and version-like names are legal identifiers and worth exercising.
names = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True).filter(lambda s: s not in KEYWORDS),
    st.sampled_from(["list", "vector", "v1", "v22", "user_id", "ts", "e5", "_"]),
).map(lambda v: ast.Name(value=v))

strings = st.text(max_size=12)
versions = st.integers(0, 999_999_999)

scalar_types = st.sampled_from(SCALARS).map(Type)
types = st.recursive(
    scalar_types,
    lambda inner: st.one_of(
        inner.map(Type.list_of),
        st.builds(Type.vector, st.integers(1, 4096), scalar_types),
    ),
    max_leaves=3,
).flatmap(lambda t: st.sampled_from([t, t.nullable()]))
type_refs = types.map(lambda t: ast.TypeRef(type=t))

_UNITS = (1_000_000, 60_000_000, 3_600_000_000, 86_400_000_000, 604_800_000_000)
durations = st.builds(lambda n, unit: n * unit, st.integers(0, 10_000), st.sampled_from(_UNITS)).map(
    lambda us: ast.Literal(kind="duration", value=us))

# hopping, tumbling and session windows: literals of kind "window", only as a call's later argument
windows = st.one_of(
    st.builds(lambda w, h: ast.Literal(kind="window", value=("hopping", w.value, h.value)), durations, durations),
    st.builds(lambda k, d: ast.Literal(kind="window", value=(k, d.value, None)),
              st.sampled_from(["tumbling", "session"]), durations),
)


def _literals(sign: int = 1):
    """Literals; `sign=-1` adds the negative numbers only a `default` can hold."""
    ints = st.integers(0, INT64_MAX) if sign > 0 else st.integers(-INT64_MAX, INT64_MAX)
    floats = st.floats(min_value=0.0 if sign > 0 else None, allow_nan=False, allow_infinity=False)
    return st.one_of(
        ints.map(lambda v: ast.Literal(kind="int", value=v)),
        floats.map(lambda v: ast.Literal(kind="float", value=v)),
        strings.map(lambda v: ast.Literal(kind="string", value=v)),
        st.booleans().map(lambda v: ast.Literal(kind="bool", value=v)),
        st.just(ast.Literal(kind="null", value=None)),
        durations,
    )


literals = _literals()
defaults = _literals(sign=-1)

refs = st.lists(names, min_size=1, max_size=3).map(lambda ps: ast.Ref(parts=tuple(ps)))
group_refs = st.builds(lambda g, v, f: ast.GroupRef(group=g, version=v, feature=f), names, versions, names)

BINARY_OPS = ("+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "and", "or", "??", "in")


def _compound(children):
    args = st.lists(children, max_size=3).map(tuple)
    return st.one_of(
        st.builds(lambda op, a, b: ast.Binary(op=op, left=a, right=b), st.sampled_from(BINARY_OPS), children,
                  children),
        st.builds(lambda op, a: ast.Unary(op=op, operand=a), st.sampled_from(["-", "not"]), children),
        st.builds(lambda c, t, e: ast.If(cond=c, then=t, else_=e), children, children, children),
        st.builds(lambda e, t: ast.Cast(expr=e, to=t), children, type_refs),
        st.builds(lambda xs: ast.ListLit(items=xs), args),
        # `where` filters the first argument, so it needs one; a window kind may follow it
        st.builds(lambda f, xs, w, win: ast.Call(func=f, args=xs + ((win,) if xs and win else ()),
                                                 where=w if xs else None),
                  names, args, st.none() | children, st.none() | windows),
    )


exprs = st.recursive(st.one_of(literals, refs, group_refs), _compound, max_leaves=12)


def metas(deprecable: bool = False):
    text = st.none() | strings
    return st.builds(
        lambda o, d, t, dep: ast.Meta(owner=o, description=d, tags=tuple(t), deprecated=dep),
        text, text, st.lists(strings, max_size=3), text if deprecable else st.none(),
    )


fields = st.builds(lambda n, t: ast.Field(name=n, type=t), names, type_refs)

imports = strings.map(lambda p: ast.Import(path=p))
entities = st.builds(lambda n, ks, m: ast.Entity(name=n, keys=tuple(ks), meta=m),
                     names, st.lists(fields, min_size=1, max_size=3), metas())
bindings = st.builds(
    lambda e, ms: ast.Binding(entity=e, mapping=tuple(ms)),
    names, st.lists(st.builds(lambda k, c: ast.KeyMap(key=k, column=c), names, names), max_size=2),
)
sources = st.builds(
    lambda kind, n, bs, p, t, cs, ms, m: ast.Source(kind=kind, name=n, entities=tuple(bs), path=p, time=t,
                                                    columns=tuple(cs), max_staleness=ms, meta=m),
    st.sampled_from(["events", "snapshot"]), names, st.lists(bindings, min_size=1, max_size=3), strings, names,
    st.lists(fields, max_size=3), st.none() | durations, metas(),
)
requests = st.builds(lambda n, fs, m: ast.Request(name=n, fields=tuple(fs), meta=m),
                     names, st.lists(fields, max_size=3), metas())
features = st.builds(
    lambda n, t, e, d, desc: ast.Feature(name=n, type=t, expr=e, default=d, description=desc),
    names, type_refs, exprs, st.none() | defaults, st.none() | strings,
)
groups = st.builds(lambda n, v, e, fs, m: ast.Group(name=n, version=v, entity=e, features=tuple(fs), meta=m),
                   names, versions, names, st.lists(features, max_size=4), metas(deprecable=True))
selections = st.one_of(
    st.builds(lambda g, v: ast.Selection(group=g, version=v, feature=None), names, versions),
    st.builds(lambda g, v, f, a: ast.Selection(group=g, version=v, feature=f, alias=a),
              names, versions, names, st.none() | names),
)
services = st.builds(lambda n, v, rs, ss, m: ast.Service(name=n, version=v, requests=tuple(rs),
                                                         selections=tuple(ss), meta=m),
                     names, versions, st.lists(names, max_size=2), st.lists(selections, max_size=3), metas())

decls = st.one_of(imports, entities, sources, requests, groups, services)
modules = st.lists(decls, max_size=5).map(lambda ds: ast.Module(path="gen.feat", decls=tuple(ds)))


# --------------------------------------------------------------------------- mutated source text

SAMPLE = '''\
import "common.feat"  # one file
import "shared/"

# the people paying
entity user {
    description "A card holder"
    key user_id: int64
}
entity user_merchant { key user_id: int64  key merchant_id: int64 }  # composite

events transactions for user, merchant, user_merchant {
    path "transactions.parquet"
    time ts
    columns { user_id: int64  merchant_id: int64  amount: float64?  category: string  ts: timestamp }
    max_staleness 1h
    owner "payments@example.com"
}
events transfers for user(user_id = sender_id) { path "t.parquet" time ts columns { sender_id: int64 ts: timestamp } }

snapshot profiles for user { path "profiles.parquet"  time updated_at  columns { user_id: int64 country: string } }

request checkout {
    amount: float64
    channel: string?
}

features user_spend v1 for user {
    owner "risk@example.com"
    tags ["risk", "spend"]
    deprecated "use v2"
    tx_count_7d: int64 = count(transactions, 7d)
    big_7d: int64 = count(transactions where amount > 100.0, 7d)  # filtered
    big_sum: float64 = sum(transactions.amount where category == "x\\"y", 30d)
    last_category: string? = last(transactions.category)
    recent: list<string> = last_k(transactions.category, 5, 7d)
    secs: float64? = seconds(now() - last(transactions.ts))
    other: float64 = user_profile@v1.credit_limit ?? 0.0
    is_big: bool = checkout.amount > 1e3 and not (tx_count_7d == 0)
    bucket: string = if tx_count_7d > 10 then "heavy" else "light"
    score: float64 = clip(log(-tx_sum_7d + .5), 0.0, 10.0) default -1.0 description "a doc"
    v: vector<float32, 64>? = null
    f: float32 = tx_sum_7d as float32 % 2
    ok: bool = category in ["a", "b"] or false
}

service fraud_model v1 {
    request checkout
    user_spend@v1.*
    user_profile@v1.tier as profile_tier
}
'''

# Declaration-sized pieces keep each fuzz case cheap to parse; the whole sample is one of them.
PIECES = (SAMPLE, *(p.strip() + "\n" for p in SAMPLE.split("\n\n")))

_TOKEN = r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|[A-Za-z_]\w*|\d[\w.]*|\?\?|[=!<>]=|\S'
_VOCAB = ("{", "}", "(", ")", "[", "]", "<", ">", ":", "=", ",", ".", "@", "*", "?", "??", "-", "+", "==",
          '"', "#", "\\", "entity", "features", "for", "where", "as", "if", "then", "else", "default", "key",
          "v1", "7d", "1.5", "99999999999999999999999", "int64", "flot64", "x", "\n", " ", "\x00", "é", "💥")
_junk = st.one_of(st.sampled_from(_VOCAB), st.text(max_size=4))


@st.composite
def mutated_sources(draw, token_level: bool = False) -> str:
    """A sample piece with 1-4 random edits: characters, or whole tokens when `token_level`."""
    text = draw(st.sampled_from(PIECES))
    for _ in range(draw(st.integers(1, 4))):
        if token_level:
            toks = re.findall(_TOKEN + r"|\s+", text) or [""]
            i, j = draw(st.integers(0, len(toks) - 1)), draw(st.integers(0, len(toks) - 1))
            edit = draw(st.sampled_from(["delete", "duplicate", "swap", "replace"]))
            if edit == "delete":
                del toks[i]
            elif edit == "duplicate":
                toks.insert(i, toks[i])
            elif edit == "swap":
                toks[i], toks[j] = toks[j], toks[i]
            else:
                toks[i] = draw(_junk)
            text = "".join(toks)
        else:
            i = draw(st.integers(0, len(text)))
            j = draw(st.integers(i, min(len(text), i + 4)))
            edit = draw(st.sampled_from(["delete", "insert", "duplicate", "swap"]))
            if edit == "delete":
                text = text[:i] + text[j:]
            elif edit == "insert":
                text = text[:i] + draw(_junk) + text[i:]
            elif edit == "duplicate":
                text = text[:j] + text[i:j] + text[j:]
            elif j >= i + 2:
                text = text[:i] + text[j - 1] + text[i + 1:j - 1] + text[i] + text[j:]
    return text

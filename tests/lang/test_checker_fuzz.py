"""Random feature groups and services written against the example project's own names.

Text mutations mostly exercise the parser; these programs always parse and are made of the
project's entities, sources, columns, requests, groups and the registry's functions, so they
reach every check of the type and time checker and the plan builder. Each is added to a copy of
`features/` as one more file and compiled; the same contract as the mutation fuzz holds.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutations import copy_project, problems
from strategies import _compound

from astra.compiler import compile_project
from astra.lang import ast
from astra.lang.check import FUNCTIONS
from astra.lang.fmt import format_module
from astra.lang.types import SCALARS, Type
from astra.ops.aggregations import AGGREGATIONS

ROOT = Path(__file__).resolve().parents[2]
ENTITIES = ["user", "merchant", "user_merchant", "nobody"]
COLUMNS = {"transactions": ["amount", "category", "ts", "user_id", "merchant_id", "nope"],
           "profiles": ["country", "tier", "credit_limit", "updated_at", "user_id"],
           "checkout": ["amount", "channel"], "device": ["embedding"], "ghost": ["x"]}
GROUPS = {("user_spend", 1): ["tx_sum_7d", "tx_count_7d", "last_category"],
          ("user_spend", 2): ["big_tx_7d", "recent_categories"], ("user_profile", 1): ["country", "tier"],
          ("merchant_activity", 1): ["customers_7d"], ("gen_0", 1): ["f0", "f1"], ("gen_1", 1): ["f2"],
          ("ghost", 3): ["x"]}
LOCAL = ["f0", "f1", "f2", "f3"]


def _name(value: str) -> ast.Name:
    return ast.Name(value=value)


def _ref(*parts: str) -> ast.Ref:
    return ast.Ref(parts=tuple(_name(p) for p in parts))


small_literals = st.one_of(
    st.integers(0, 1000).map(lambda v: ast.Literal(kind="int", value=v)),
    st.sampled_from([0.0, 1.5, 100.0]).map(lambda v: ast.Literal(kind="float", value=v)),
    st.sampled_from(["web", "", "cat_03"]).map(lambda v: ast.Literal(kind="string", value=v)),
    st.booleans().map(lambda v: ast.Literal(kind="bool", value=v)),
    st.just(ast.Literal(kind="null", value=None)),
    st.sampled_from([0, 3_600_000_000, 604_800_000_000]).map(lambda v: ast.Literal(kind="duration", value=v)),
)
columns = st.sampled_from([(s, c) for s, cs in COLUMNS.items() for c in cs]).map(lambda sc: _ref(*sc))
sources = st.sampled_from([*COLUMNS, "profiles.tier.x"]).map(lambda s: _ref(*s.split(".")))
locals_ = st.sampled_from(LOCAL).map(_ref)
group_refs = st.sampled_from([(g, v, f) for (g, v), fs in GROUPS.items() for f in [*fs, "nope"]]).map(
    lambda gvf: ast.GroupRef(group=_name(gvf[0]), version=gvf[1], feature=_name(gvf[2])))
leaves = st.one_of(small_literals, columns, sources, locals_, group_refs)


def _calls(children):
    funcs = st.sampled_from(sorted({*AGGREGATIONS, *FUNCTIONS}))
    first = st.one_of(columns, sources, children)
    args = st.tuples(first, st.lists(st.one_of(small_literals, children), max_size=2)).map(
        lambda a: (a[0], *a[1]))
    return st.one_of(_compound(children), st.builds(
        lambda f, xs, w: ast.Call(func=_name(f), args=xs, where=w), funcs, args | st.just(()),
        st.none() | children).map(lambda c: c if c.args or c.where is None else ast.Call(func=c.func, args=())))


exprs = st.recursive(leaves, _calls, max_leaves=6)
types = st.sampled_from([*SCALARS, "list<string>"]).flatmap(
    lambda t: st.sampled_from([t, t + "?"])).map(
    lambda t: ast.TypeRef(type=Type.list_of(Type("string")).nullable() if t == "list<string>?" else
                          Type.list_of(Type("string")) if t == "list<string>" else
                          Type(t.rstrip("?")).nullable() if t.endswith("?") else Type(t)))
features = st.builds(lambda n, t, e, d: ast.Feature(name=_name(n), type=t, expr=e, default=d),
                     st.sampled_from(LOCAL), types, exprs,
                     st.integers(0, 9).flatmap(lambda i: small_literals if i == 0 else st.none()))
groups = st.builds(lambda i, e, fs: ast.Group(name=_name(f"gen_{i}"), version=1, entity=_name(e), features=tuple(fs)),
                   st.integers(0, 1), st.sampled_from(ENTITIES),
                   st.lists(features, min_size=1, max_size=4, unique_by=lambda f: f.name.value))
selections = st.builds(
    lambda gvf, alias: ast.Selection(group=_name(gvf[0]), version=gvf[1], feature=None if gvf[2] == "*" else
                                     _name(gvf[2]), alias=None if alias is None or gvf[2] == "*" else _name(alias)),
    st.sampled_from([(g, v, f) for (g, v), fs in GROUPS.items() for f in [*fs, "*"]]),
    st.none() | st.sampled_from(["amount", "user_id", "merchant_id", "country", "f0", "out"]))
services = st.builds(lambda rs, ss: ast.Service(name=_name("gen_service"), version=1,
                                                requests=tuple(_name(r) for r in rs), selections=tuple(ss)),
                     st.lists(st.sampled_from(["checkout", "device", "ghost"]), max_size=2, unique=True),
                     st.lists(selections, min_size=1, max_size=4))
modules = st.builds(lambda gs, ss: ast.Module(path="zz_generated.feat", decls=(*gs, *ss)),
                    st.lists(groups, min_size=1, max_size=2, unique_by=lambda g: g.name.value),
                    st.lists(services, max_size=1))


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(module=modules)
def test_generated_groups_and_services_compile_to_located_diagnostics(tmp_path_factory, module) -> None:
    root = copy_project(ROOT / "features", tmp_path_factory.mktemp("gen") / "features")
    text = format_module(module)
    (root / "zz_generated.feat").write_text(text)
    result = compile_project(root, lock="ignore")
    found = problems(result)
    assert not found, "\n".join(found) + f"\n--- zz_generated.feat ---\n{text}"

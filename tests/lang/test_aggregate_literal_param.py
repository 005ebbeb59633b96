"""The checker's seam for an aggregation taking a "literal" parameter (`param_kind = "literal"`):
any literal or list of literals after the column is handed to the aggregation's own type rules,
whose errors keep their code and point at the parameter.  Shown with an aggregation registered
for this test only, so the checker holds no code for any particular one."""

from __future__ import annotations

import pytest

from astra.compiler import compile_project
from astra.lang.types import INT64, Type
from astra.ops.aggregations import AGGREGATIONS, Aggregation
from astra.ops.registry import TypeRuleError

SOURCE = """entity user { key uid: int64 }
events ev for user {
    path "ev.parquet"
    time ts
    columns { uid: int64  n: int64?  s: string? }
}
features f v1 for user {
    x: list<int64> = CALL
}
"""


class CountOf(Aggregation):
    """How many values equal each listed one (a stand-in; only its type rules run here)."""

    name, takes_param, param_kind, param_label = "count_of_test", True, "literal", "values"
    doc = "test only"

    def check_param_type(self, column, param):
        if param.name != "list" or (not param.item.is_null and param.item != column.non_null()):
            raise TypeRuleError(f"`{self.name}` needs a list of `{column.non_null()}` literals", arg=1, code="E0299")

    def infer(self, column, param):
        if not param:
            raise TypeRuleError(f"`{self.name}` needs at least one value", arg=1, code="E0298", help="e.g. [1]")
        return Type.list_of(INT64)

    def example_param(self, column):
        return (1, 2)


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(AGGREGATIONS, CountOf.name, CountOf())


def _compile(tmp_path, call: str):
    (tmp_path / "f.feat").write_text(SOURCE.replace("CALL", call))
    return compile_project(tmp_path, lock="ignore")


def test_a_list_of_literals_reaches_the_plan_as_a_tuple(tmp_path, registered):
    result = _compile(tmp_path, "count_of_test(ev.n, [3, -1, 7], 7d)")
    assert result.ok, [d.message for d in result.diagnostics]
    [agg] = [n for f in result.plan.features for n in [f.expr]]
    assert agg.op == "count_of_test" and agg.param == (3, -1, 7) and agg.window == 7 * 86_400_000_000


def test_the_rules_errors_keep_their_code_and_point_at_the_parameter(tmp_path, registered):
    call = 'count_of_test(ev.n, ["a"], 7d)'
    [d] = _compile(tmp_path, call).diagnostics
    text = SOURCE.replace("CALL", call)
    assert d.code == "E0299" and text[d.span.start:d.span.end] == '["a"]' and d.label == "this is `list<string>`"
    call = "count_of_test(ev.n, [])"
    [d] = _compile(tmp_path, call).diagnostics
    assert (d.code, d.help) == ("E0298", "e.g. [1]")
    assert SOURCE.replace("CALL", call)[d.span.start:d.span.end] == "[]"


def test_a_parameter_that_is_no_literal_is_a_located_error(tmp_path, registered):
    for call in ("count_of_test(ev.n, ev.n, 7d)", "count_of_test(ev.n)", "count_of_test(ev.n, [ev.n])"):
        [d] = _compile(tmp_path, call).diagnostics
        assert d.code == "E0207", (call, d.message)
    [d] = _compile(tmp_path, "count_of_test(ev.n, [1, null])").diagnostics
    assert d.code == "E0201" and "non-null and of one type" in d.message

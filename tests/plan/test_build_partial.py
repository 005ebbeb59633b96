"""A plan built from a project with errors: later passes skip what earlier ones could not build,
keep reporting the errors that do not depend on it, and never crash."""

from __future__ import annotations

from astra.compiler import compile_project

PROJECT = """
entity user { key user_id: int64 }

events transactions for user {
    path "transactions.parquet"
    time ts
    columns { user_id: int64  amount: float64? }
}

features spend v1 for usr {
    n: int64 = count(transactions, 7d)
}

features other v1 for user {
    m: int64 = count(transactions, 7d)
    bad: int64 = nope(1)
}

service model v1 {
    spend@v1.n
    other@v1.m
    other@v1.bad
    other@v9.m
}
"""


def test_a_service_selecting_a_group_that_failed_reports_the_independent_errors(tmp_path) -> None:
    (tmp_path / "p.feat").write_text(PROJECT)
    result = compile_project(tmp_path / "p.feat", lock="ignore")
    assert not result.ok
    codes = sorted(d.code for d in result.diagnostics)
    # the unknown entity, the unknown function and the unknown version, each once; nothing follows from them
    assert codes == ["E0101", "E0106", "E0108"], codes
    (svc,) = result.plan.services
    assert [o.name for o in svc.outputs] == ["m"]  # only what was built

"""Drawn programs written as `.feat` source and compiled by the language front end (parser,
resolver, type and time checker, plan builder), then answered five ways like the drawn IR
(`test_differential.check`): the registry's type rules accept them, so the checker must too, and
the compiled plan must mean what the oracle says it means.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import attrs
from feat_text import feat_source, scale_case
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from strategies_plan import Case, cases
from test_differential import check

from astra.compiler import compile_project
from astra.diagnostics import render_all

BOUNDED = settings(deadline=None, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate],
                   suppress_health_check=list(HealthCheck), max_examples=60)


def compile_text(text: str):
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "drawn.feat").write_text(text)
        return compile_project(d, lock="ignore")


@BOUNDED
@given(cases(), st.data())
def test_drawn_programs_compile_from_source_and_agree(case: Case, data) -> None:
    case = scale_case(case)
    text = feat_source(case.plan)
    assume(text is not None)  # a timestamp constant, or a negative literal where only literals go
    result = compile_text(text)
    assert result.ok, f"the checker refused a program the registry's type rules accept:\n{text}\n" + \
        render_all(result.diagnostics, result.sources)
    compiled = result.plan
    drawn = {f.id: f.type for f in case.plan.features}
    assert {f.id: f.type for f in compiled.features} == drawn, text
    check(attrs.evolve(case, plan=compiled), data)

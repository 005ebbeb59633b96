"""Golden tests of recovery from syntax errors across a project (`diagnostics/recover_*.feat`).

One syntax error is reported once: the declaration (or feature) it breaks is dropped, errors that
only follow from the loss are not reported, and every other declaration is still checked, so an
independent mistake later in the project still shows. Regenerate with
`ASTRA_UPDATE_GOLDEN=1 uv run pytest tests/lang/test_recovery_golden.py` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from astra.compiler import compile_project
from astra.diagnostics import render_all

ROOT = Path(__file__).resolve().parents[2]
CASES = sorted((ROOT / "tests/lang/diagnostics").glob("recover_*.feat"))
# What each case must report, by code: one syntax error, then only the independent errors.
EXPECTED = {
    "recover_feature": ["E0001", "E0203", "E0204"],
    "recover_declaration": ["E0018", "E0205"],
    "recover_import": ["E0007", "E0204"],
    "recover_unclosed": ["E0001", "E0204"],
    "recover_stray_brace": ["E0007", "E0204"],
}


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_one_syntax_error_is_reported_once_and_the_rest_is_checked(case: Path, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    result = compile_project(case.relative_to(ROOT), lock="ignore")
    rendered = render_all(result.diagnostics, result.sources) + "\n"
    assert sorted(d.code for d in result.diagnostics) == EXPECTED[case.stem], rendered
    golden = case.with_suffix(".txt")
    if os.environ.get("ASTRA_UPDATE_GOLDEN"):
        golden.write_text(rendered)
    assert golden.exists(), f"no golden file for {case.name}; run with ASTRA_UPDATE_GOLDEN=1"
    assert rendered == golden.read_text()


def test_every_case_has_its_expected_codes() -> None:
    assert {c.stem for c in CASES} == set(EXPECTED)

"""Golden tests: each checker rule's rendered diagnostic, pinned in `diagnostics/check_<CODE>.txt`.

Regenerate with `ASTRA_UPDATE_GOLDEN=1 uv run pytest tests/lang/test_check_golden.py` and review
the diff.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from astra.compiler import compile_project
from astra.diagnostics import render_all

ROOT = Path(__file__).resolve().parents[2]
CASES = sorted((ROOT / "tests/lang/diagnostics").glob("check_*.feat"))


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_diagnostic_is_pinned(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = compile_project(case.relative_to(ROOT), lock="ignore")
    code = case.stem.removeprefix("check_")
    rendered = render_all(result.diagnostics, result.sources) + "\n"
    assert any(d.code == code for d in result.diagnostics), rendered
    golden = case.with_suffix(".txt")
    if os.environ.get("ASTRA_UPDATE_GOLDEN"):
        golden.write_text(rendered)
    assert golden.exists(), f"no golden file for {case.name}; run with ASTRA_UPDATE_GOLDEN=1"
    assert rendered == golden.read_text()


def test_every_documented_code_has_a_golden_case() -> None:
    doc = (ROOT / "docs/language.md").read_text()
    documented = set(re.findall(r"^\| ([EW]0[1-9]\d\d) \|", doc, flags=re.M))
    pinned = {c.stem.removeprefix("check_") for c in CASES}
    lock_codes = {"E0601", "E0602", "E0603"}  # need a lock file: tests/plan/test_lock.py
    assert documented - lock_codes <= pinned, documented - lock_codes - pinned


def test_every_code_the_compiler_emits_is_documented() -> None:
    doc = (ROOT / "docs/language.md").read_text()
    emitted = set()
    for path in (ROOT / "astra").rglob("*.py"):
        emitted |= set(re.findall(r'"([EW]0[1-9]\d\d)"', path.read_text()))
    missing = {c for c in emitted if f"| {c} |" not in doc}
    assert not missing, f"codes emitted but not documented in docs/language.md: {sorted(missing)}"


def test_every_syntax_error_code_is_documented() -> None:
    from astra.lang.parser import PARSE_ERRORS

    doc = (ROOT / "docs/language.md").read_text()
    assert all(f"| {code} |" in doc for code in PARSE_ERRORS)

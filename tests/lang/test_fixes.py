"""Every hint that names a concrete change carries it as a fix (`Diagnostic.fix`), and the fix
works: applied to the golden case's source, the diagnostic is gone and no new error appears.

An editor applies the same edits (`apply_fix`); a hint that suggested a change the checker then
rejected (E0204's `(...) as int64` of a float, which is `int64?`) fails here.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from astra.compiler import compile_project
from astra.diagnostics import Diagnostic, Severity, apply_fix

ROOT = Path(__file__).resolve().parents[2]
DIAGNOSTICS = ROOT / "tests/lang/diagnostics"
CASES = sorted(p for p in DIAGNOSTICS.glob("*.feat") if not p.name.startswith("_"))

# A hint names a concrete change when it says what to write: a name, a type, an output name.
CONCRETE = re.compile(r"did you mean `|^declare it `|^declare `|^add `[^`]*` to|^choose another name, e\.g\. |"
                      r"e\.g\. `as |e\.g\. `time |^pick a timestamp column|^rename with `as`: `(?!group@v1)|"
                      r"^aggregate it over a window|^keep one of them")


def compile_case(path: Path):
    return compile_project(path, lock="ignore")


def errors(diagnostics) -> Counter:
    return Counter((d.code, d.message) for d in diagnostics if d.severity is Severity.ERROR)


def fixable() -> list[tuple[str, int, Diagnostic]]:
    out = []
    for case in CASES:
        for i, d in enumerate(compile_case(case).diagnostics):
            if d.fix:
                out.append((case.name, i, d))
    return out


FIXABLE = fixable()


@pytest.mark.parametrize(("case", "index", "diagnostic"), FIXABLE,
                         ids=[f"{c}-{d.code}-{i}" for c, i, d in FIXABLE])
def test_a_fix_applied_removes_its_diagnostic_and_adds_none(case: str, index: int, diagnostic: Diagnostic,
                                                           tmp_path: Path) -> None:
    work = tmp_path / "diagnostics"
    shutil.copytree(DIAGNOSTICS, work)
    before = compile_case(work / case).diagnostics
    d = before[index]
    assert (d.code, d.message, d.fix and [e.text for e in d.fix]) == \
        (diagnostic.code, diagnostic.message, [e.text for e in diagnostic.fix])
    assert len({e.span.file for e in d.fix}) == 1, "a fix edits one file"
    target = work / d.fix[0].span.file  # spans name files relative to the project's directory
    target.write_text(apply_fix(target.read_text(), d.fix))
    after = compile_case(work / case).diagnostics
    expected = errors(before) - Counter({(d.code, d.message): 1})
    new = errors(after) - expected
    assert not new, f"applying {d.fix} to {target.name} left or caused: {sorted(new)}"
    if d.severity is not Severity.ERROR:
        assert (d.code, d.message) not in {(x.code, x.message) for x in after}


def test_every_concrete_hint_has_a_fix() -> None:
    missing = []
    for case in CASES:
        for d in compile_case(case).diagnostics:
            if CONCRETE.search(d.help) and not d.fix:
                missing.append(f"{case.name}: {d.code} {d.help}")
    assert not missing, "\n".join(missing)


def test_hints_have_no_placeholders_where_a_value_is_known() -> None:
    """`<value>` cannot be pasted in: the hint says which value would do."""
    for case in CASES:
        for d in compile_case(case).diagnostics:
            assert "<value>" not in d.help, f"{case.name}: {d.help}"


def test_fixes_in_json() -> None:
    d = next(d for c, _, d in FIXABLE if c == "check_E0204.feat")
    fix = d.to_json()["fix"]
    assert fix == [{"location": fix[0]["location"], "replacement": "int64"}]
    assert fix[0]["location"]["line"] == 4 and fix[0]["location"]["col"] == 8


@pytest.mark.parametrize(("declared", "expr"), [
    ("int64", "sum(transactions.amount, 7d)"),       # float64 as int64 is int64?: needs `?? 0`
    ("int32", "count(transactions, 7d)"),            # int64 as int32 is int32?
    ("string", "count(transactions, 1d)"),           # int64 as string is a string
    ("bool", "count(transactions, 1d)"),             # int64 as bool is x != 0
    ("float64", "transactions_seen"),                # a list: no cast to suggest
])
def test_the_cast_e0204_suggests_compiles(declared: str, expr: str, tmp_path: Path) -> None:
    shutil.copy(DIAGNOSTICS / "_base.feat", tmp_path)
    feat = tmp_path / "f.feat"

    def write(declared: str, expr: str) -> list[Diagnostic]:
        feat.write_text(f'import "_base.feat"\n\nfeatures spend v1 for user {{\n'
                        f'    transactions_seen: list<string> = last_k(transactions.category, 3, 7d)\n'
                        f'    x: {declared} = {expr}\n}}\n')
        return compile_case(feat).diagnostics

    (d,) = [d for d in write(declared, expr) if d.severity is Severity.ERROR]
    assert d.code == "E0204"
    cast = re.search(r"`\(\.\.\.\) (as [^`]+)`", d.help)
    if expr == "transactions_seen":
        assert cast is None, d.help
        return
    assert cast, d.help
    assert [e.code for e in write(declared, f"({expr}) {cast.group(1)}")] == []


@pytest.mark.parametrize(("declared", "expr"), [
    ("float64", "mean(transactions.amount, 7d)"),
    ("int32", "profiles.tier"),
    ("string", "last(transactions.category)"),
    ("bool", "mean(transactions.amount, 7d) > 1.0"),
    ("int64", "count(transactions, 7d) % 3"),
])
def test_each_value_e0205_suggests_compiles(declared: str, expr: str, tmp_path: Path) -> None:
    shutil.copy(DIAGNOSTICS / "_base.feat", tmp_path)
    feat = tmp_path / "f.feat"

    def write(feature: str) -> list[Diagnostic]:
        feat.write_text(f'import "_base.feat"\n\nfeatures spend v1 for user {{\n    {feature}\n}}\n')
        return compile_case(feat).diagnostics

    (d,) = write(f"x: {declared} = {expr}")
    assert d.code == "E0205"
    default, coalesce = re.search(r"`(default [^`]+)` or `(\?\? [^`]+)`", d.help).groups()
    assert write(f"x: {declared} = {expr} {default}") == ()
    assert write(f"x: {declared} = {expr} {coalesce}") == ()


def test_a_feature_is_never_suggested_to_itself(tmp_path: Path) -> None:
    """`big_share_7d` misspelt inside `big_share_7d` would be a cycle (E0401), not a fix."""
    shutil.copy(DIAGNOSTICS / "_base.feat", tmp_path)
    feat = tmp_path / "f.feat"
    feat.write_text('import "_base.feat"\n\nfeatures spend v1 for user {\n'
                    '    big_share_7d: float64? = big_shar_7d / 2.0\n    big_share_1d: int64 = 1\n}\n')
    (d,) = compile_case(feat).diagnostics
    assert d.code == "E0104" and "big_share_7d" not in d.help
    assert [e.text for e in d.fix] == ["big_share_1d"]
    feat.write_text(apply_fix(feat.read_text(), d.fix))
    assert compile_case(feat).diagnostics == ()


def test_a_service_selection_is_not_pointed_at_a_feature_it_already_returns(tmp_path: Path) -> None:
    shutil.copy(DIAGNOSTICS / "_base.feat", tmp_path)
    feat = tmp_path / "f.feat"
    feat.write_text('import "_base.feat"\n\nfeatures spend v1 for user {\n'
                    '    tx_count_1d: int64 = count(transactions, 1d)\n'
                    '    tx_count_7d: int64 = count(transactions, 7d)\n}\n\n'
                    'service model v1 {\n    spend@v1.tx_count_1d\n    spend@v1.tx_count_1x\n}\n')
    (d,) = compile_case(feat).diagnostics
    assert d.code == "E0104" and [e.text for e in d.fix] == ["tx_count_7d"]
    feat.write_text(apply_fix(feat.read_text(), d.fix))
    assert compile_case(feat).diagnostics == ()


def test_now_is_not_suggested_for_a_call_with_arguments(tmp_path: Path) -> None:
    shutil.copy(DIAGNOSTICS / "_base.feat", tmp_path)
    feat = tmp_path / "f.feat"
    feat.write_text('import "_base.feat"\n\nfeatures spend v1 for user {\n    x: float64? = nw(2.0)\n}\n')
    (d,) = compile_case(feat).diagnostics
    assert d.code == "E0108" and "`now`" not in d.help and not any(e.text == "now" for e in d.fix)

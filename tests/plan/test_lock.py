"""astra.lock: released versions cannot change logic; metadata changes are recorded; new versions
need --lock."""

from __future__ import annotations

import json

from astra.compiler import compile_project
from astra.diagnostics import render_all


def codes(result) -> list[str]:
    return [d.code for d in result.diagnostics]


def test_first_compile_with_lock_releases_every_version(write_project, base) -> None:
    d = write_project(base)
    first = compile_project(d, lock="check")
    assert set(codes(first)) == {"E0602"}
    released = compile_project(d, lock="update")
    assert released.ok
    lock = json.loads((d / "astra.lock").read_text())
    assert set(lock["groups"]) == {"spend@v1", "derived@v1", "profile@v1"}
    assert compile_project(d, lock="check").ok


def test_changed_logic_is_refused_with_the_change_and_the_pinning_services(write_project, base) -> None:
    d = write_project(base)
    assert compile_project(d, lock="update").ok
    (d / "main.feat").write_text(base.replace("sum(transactions.amount, 7d)", "sum(transactions.amount, 8d)"))
    result = compile_project(d, lock="check")
    assert "E0601" in codes(result)
    text = render_all(result.diagnostics, result.sources)
    assert "`spend@v1`" in text and "window 7d -> 8d" in text and "model@v1" in text
    # the dependant group's logic changed too, through its parent
    assert "`derived@v1`" in text
    # and the lock is left untouched
    assert "8d" not in (d / "astra.lock").read_text()


def test_metadata_change_is_recorded(write_project, base) -> None:
    d = write_project(base)
    assert compile_project(d, lock="update").ok
    before = json.loads((d / "astra.lock").read_text())
    (d / "main.feat").write_text(base.replace('description "spend"', 'description "card spend"'))
    result = compile_project(d, lock="check")
    assert result.ok
    assert any("metadata of spend@v1 changed" in n for n in result.notes)
    after = json.loads((d / "astra.lock").read_text())
    assert after["groups"]["spend@v1"]["meta"] != before["groups"]["spend@v1"]["meta"]
    assert after["groups"]["spend@v1"]["data"] == before["groups"]["spend@v1"]["data"]


def test_a_new_version_beside_a_locked_one(write_project, base) -> None:
    d = write_project(base)
    assert compile_project(d, lock="update").ok
    v2 = base + "\nfeatures spend v2 for user { tx_sum_8d: float64 = sum(transactions.amount, 8d) }\n"
    (d / "main.feat").write_text(v2)
    assert codes(compile_project(d, lock="check")) == ["E0602"]
    assert compile_project(d, lock="update").ok
    assert "spend@v2" in json.loads((d / "astra.lock").read_text())["groups"]


def test_a_dependant_names_the_feature_that_changed_and_the_next_free_version(write_project, base) -> None:
    d = write_project(base)
    assert compile_project(d, lock="update").ok
    (d / "main.feat").write_text(base.replace("sum(transactions.amount, 7d)", "sum(transactions.amount, 9d)"))
    text = render_all(compile_project(d, lock="check").diagnostics, {})
    assert "`double_sum` reads `spend@v1.tx_sum_7d`, whose logic changed" in text
    assert "features spend v2" in text  # the next free version


def test_a_malformed_lock_file_is_a_located_error_and_is_left_alone(write_project, base) -> None:
    d = write_project(base)
    assert compile_project(d, lock="update").ok
    good = (d / "astra.lock").read_text()
    lines = good.splitlines()
    conflicted = "\n".join([*lines[:3], "<<<<<<< HEAD", *lines[3:5], "=======", ">>>>>>> branch", *lines[5:]])
    shapeless = json.dumps({"format": 1, "groups": {"spend@v1": {"data": "x", "features": []}}})
    for text, line in ((conflicted, 4), (shapeless, 1), ("[]", 1)):
        (d / "astra.lock").write_text(text)
        for mode in ("check", "update"):
            result = compile_project(d, lock=mode)
            (diag,) = result.diagnostics
            assert diag.code == "E0110" and "astra.lock" in diag.message
            assert diag.span.file.endswith("astra.lock") and diag.span.line == line
            render_all(result.diagnostics, result.sources)
            assert (d / "astra.lock").read_text() == text  # never overwritten


def test_a_lock_file_that_cannot_be_written_is_an_error_not_an_exception(write_project, base) -> None:
    d = write_project(base)
    (d / "astra.lock.tmp").mkdir()  # where the lock is written before it atomically replaces the old one
    result = compile_project(d, lock="update")
    assert [x.code for x in result.diagnostics] == ["E0110"] and "cannot write" in result.diagnostics[0].message
    assert not result.ok and not (d / "astra.lock").exists()


def test_an_engine_run_refuses_changed_logic_notes_new_versions_and_writes_nothing(write_project, base) -> None:
    d = write_project(base)
    assert compile_project(d, lock="update").ok
    locked = (d / "astra.lock").read_text()
    v2 = base + "\nfeatures spend v2 for user { tx_sum_8d: float64 = sum(transactions.amount, 8d) }\n"
    (d / "main.feat").write_text(v2.replace('description "spend"', 'description "card spend"'))
    run = compile_project(d, lock="run", escape="--allow-unlocked")
    assert run.ok, codes(run)  # a new version runs ...
    assert any("spend@v2" in n and "under development" in n for n in run.notes)  # ... with a note
    assert (d / "astra.lock").read_text() == locked  # and an engine never writes the lock
    (d / "main.feat").write_text(v2.replace("sum(transactions.amount, 7d)", "sum(transactions.amount, 8d)"))
    refused = compile_project(d, lock="run", escape="--allow-unlocked")
    assert "E0601" in codes(refused)
    assert "pass --allow-unlocked" in render_all(refused.diagnostics, refused.sources)
    allowed = compile_project(d, lock="run", escape="--allow-unlocked", allow_unlocked=True)
    assert allowed.ok and any("spend@v1" in n and "differs from astra.lock" in n for n in allowed.notes)
    assert (d / "astra.lock").read_text() == locked


def test_locked_refuses_any_rewrite_and_check_says_what_it_rewrote(write_project, base) -> None:
    d = write_project(base)
    assert codes(compile_project(d, lock="locked")) == ["E0602"] * 3  # nothing is released yet
    assert not (d / "astra.lock").exists()
    assert compile_project(d, lock="update").ok
    assert compile_project(d, lock="locked").ok  # nothing to change
    locked = (d / "astra.lock").read_text()
    (d / "main.feat").write_text(base.replace('description "spend"', 'description "card spend"'))
    refused = compile_project(d, lock="locked")
    assert codes(refused) == ["E0603"] and "metadata of spend@v1" in refused.diagnostics[0].message
    assert (d / "astra.lock").read_text() == locked
    rewritten = compile_project(d, lock="check")
    assert rewritten.ok and any(n.startswith("rewrote") and "astra.lock" in n for n in rewritten.notes)
    assert (d / "astra.lock").read_text() != locked

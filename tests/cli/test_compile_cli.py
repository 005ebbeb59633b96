"""`astra compile`, `explain`, `graph`, `fmt` as a user runs them: exit codes, output, files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def astra(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "astra.cli.main", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the example project, free to edit."""
    shutil.copytree(ROOT / "features", tmp_path / "features", ignore=shutil.ignore_patterns("build"))
    return tmp_path / "features"


def test_the_example_project_compiles_clean_against_its_lock(project: Path) -> None:
    r = astra("compile", str(project))
    assert r.returncode == 0, r.stderr
    plan = json.loads((project / "build/plan.json").read_text())["plan"]
    services = {(s["name"], s["version"]): s for s in plan["services"]}
    outputs = [o["name"] for o in services["fraud_model", 1]["outputs"]]
    expected = [f"tx_{agg}_{w}" for w in ("1h", "1d", "7d", "30d") for agg in ("count", "sum", "mean", "max")]
    expected += ["merchants_30d", "last_category", "country", "tier", "credit_limit", "spend_ratio_1d_30d"]
    assert outputs == expected


def test_a_new_user_edits_a_feature_sees_the_diagnostic_and_bumps_the_version(project: Path) -> None:
    spend = project / "spend.feat"
    text = spend.read_text()
    # 1. a type mistake: located, with a caret and a hint; exit 1
    spend.write_text(text.replace("tx_mean_7d: float64? =", "tx_mean_7d: float64 ="))
    r = astra("compile", str(project))
    assert r.returncode == 1
    assert "spend.feat:" in r.stderr and "error[E0205]" in r.stderr and "^^^" in r.stderr and "help:" in r.stderr
    assert "Traceback" not in r.stderr
    # 2. a logic change to the released v1 is refused, naming the change and the pinning services
    spend.write_text(text.replace("tx_sum_7d: float64 = sum(transactions.amount, 7d)",
                                  "tx_sum_7d: float64 = sum(transactions.amount, 8d)", 1))
    r = astra("compile", str(project))
    assert r.returncode == 1
    assert "E0601" in r.stderr and "window 7d -> 8d" in r.stderr and "fraud_model@v1" in r.stderr
    # 3. the change released as a new version instead: refused until --lock, then clean
    v3 = text + "\nfeatures user_spend v3 for user {\n    tx_sum_8d: float64 = sum(transactions.amount, 8d)\n}\n"
    spend.write_text(v3)
    assert "E0602" in astra("compile", str(project)).stderr
    assert astra("compile", str(project), "--lock").returncode == 0
    assert astra("compile", str(project)).returncode == 0
    assert "user_spend@v3" in (project / "astra.lock").read_text()


def test_json_diagnostics_for_machines(project: Path) -> None:
    (project / "spend.feat").write_text((project / "spend.feat").read_text().replace("7d)", "7x)", 1))
    r = astra("compile", str(project), "--format", "json")
    assert r.returncode == 1
    diags = json.loads(r.stdout)
    assert diags and all({"code", "message", "location", "help"} <= d.keys() for d in diags)
    assert diags[0]["location"]["file"].endswith("spend.feat")


def test_usage_errors_exit_2_and_missing_projects_exit_1(tmp_path: Path) -> None:
    assert astra("compile", "--no-such-flag").returncode == 2
    r = astra("compile", str(tmp_path / "nowhere"))
    assert r.returncode == 1 and "no project at" in r.stderr and "Traceback" not in r.stderr


def test_explain_writes_out_the_semantics() -> None:
    r = astra("explain", "user_spend@v1.tx_mean_7d", "--project", "features")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "user_spend@v1.tx_mean_7d: float64?" in out
    assert "[t - 7d, t)" in out and "t excluded" in out
    assert "served by: fraud_model@v1" in out and "fingerprint:" in out
    assert astra("explain", "no_such_feature", "--project", "features").returncode == 1


def test_graph_exports_dot_and_mermaid() -> None:
    dot = astra("graph", "features", "--service", "fraud_model@v1")
    assert dot.returncode == 0 and dot.stdout.startswith("digraph")
    assert '"user_spend@v1.tx_sum_1d" -> "user_spend@v1.spend_ratio_1d_30d"' in dot.stdout
    assert '"source:profiles" -> "user_profile@v1.country"' in dot.stdout
    mermaid = astra("graph", "features", "--format", "mermaid")
    assert mermaid.returncode == 0 and mermaid.stdout.startswith("flowchart LR")
    bad = astra("graph", "features", "--service", "fraud_model@v9")
    assert bad.returncode == 1 and "available: v1, v2" in bad.stderr  # as in backfill and parity


def test_fmt_check_and_rewrite(tmp_path: Path) -> None:
    f = tmp_path / "x.feat"
    f.write_text("entity user {key user_id:int64}   # the user\n")
    assert astra("fmt", "--check", str(f)).returncode == 1
    assert astra("fmt", str(f)).returncode == 0
    formatted = f.read_text()
    assert "# the user" in formatted and "key user_id: int64" in formatted
    assert astra("fmt", "--check", str(f)).returncode == 0


def test_help_is_helpful() -> None:
    r = astra("--help")
    assert r.returncode == 0
    for cmd in ("compile", "backfill", "explain", "graph", "fmt", "demo"):
        assert cmd in r.stdout
    sub = astra("compile", "--help")
    assert "Exit status" in sub.stdout and "--lock" in sub.stdout


def test_the_example_project_is_formatted() -> None:
    r = astra("fmt", "--check", "features")
    assert r.returncode == 0, r.stderr


def test_compile_online_writes_each_service_plan(project: Path) -> None:
    r = astra("compile", str(project), "--online")
    assert r.returncode == 0, r.stderr
    generated = {p.name: p.read_text() for p in (project / "build/online").glob("*.py")}
    assert set(generated) == {"fraud_model_v1.py", "fraud_model_v2.py", "profile_lookup_v1.py",
                              "checkout_analysis_v1.py", "fraud_scores_v1.py", "fraud_scores_v2.py"}
    assert "def evaluate(q, req):" in generated["fraud_model_v1.py"]
    compile(generated["fraud_model_v2.py"], "fraud_model_v2.py", "exec")  # valid Python


def test_a_syntax_error_in_an_imported_file_ends_in_diagnostics_not_a_traceback(project: Path) -> None:
    entities = project / "common/entities.feat"
    entities.write_text(entities.read_text().replace("key user_id: int64", "key user_id:: int64", 1))
    r = astra("compile", str(project))
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert "common/entities.feat:5:" in r.stderr and "error[E0007]" in r.stderr


@pytest.mark.parametrize("where", ["elsewhere", "subdirectory"])
def test_the_demo_runs_from_any_directory(tmp_path: Path, where: str) -> None:
    cwd = tmp_path if where == "elsewhere" else ROOT / "astra"
    out = tmp_path / "demo"
    r = astra("demo", "--events", "3000", "--out", str(out), cwd=cwd)
    assert r.returncode == 0, r.stderr
    assert "E0110" not in r.stderr and "0 mismatches" in r.stdout
    assert (out / "fraud_model_v2.parquet").exists()
    if where == "elsewhere":  # the hints name the project the demo used, not a ./features that is not there
        assert f"`astra explain tx_mean_7d {ROOT / 'features'}`" in r.stdout


def test_files_that_cannot_be_read_or_written_give_one_line_errors(project: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    r = astra("compile", str(project), "--out", str(blocker / "plan.json"))
    assert r.returncode == 1 and "Traceback" not in r.stderr and "error: cannot write" in r.stderr
    binary = tmp_path / "binary.feat"
    binary.write_bytes(b"\xff\xfe entity")
    for args in (("compile", str(binary)), ("fmt", str(binary))):
        r = astra(*args)
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert "cannot read" in r.stderr

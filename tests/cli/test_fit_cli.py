"""`astra fit` and the engines' refusal of a transformed service without its fit, on copies of the
example project (whose fraud_scores@v1 applies fitted transforms)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from astra.plan.fit import fit_id

SERVICE = "fraud_scores@v1"


def astra(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "astra.cli.main", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def lock(project: Path) -> dict:
    return json.loads((project / "astra.lock").read_text())


def fit(project: Path, data: Path, *extra: str) -> subprocess.CompletedProcess:
    return astra("fit", str(project), "--service", SERVICE, "--spine", str(data / "spine.parquet"),
                 "--data-root", str(data), *extra)


def backfill(project: Path, data: Path, out: Path, service: str = SERVICE) -> subprocess.CompletedProcess:
    return astra("backfill", str(project), "--service", service, "--spine", str(data / "spine.parquet"),
                 "--data-root", str(data), "--out", str(out))


def one_error_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    return errors[0]


def test_fit_writes_a_content_addressed_artifact_and_pins_it(project: Path, data: Path, tmp_path: Path) -> None:
    before = lock(project)["fits"][SERVICE]["id"]
    r = fit(project, data)
    assert r.returncode == 0, r.stderr
    fid = lock(project)["fits"][SERVICE]["id"]
    assert fid != before and lock(project)["fits"][SERVICE]["previous"] == [before]  # other data, a new fit
    path = project / "fits" / f"{fid}.json"
    text = path.read_text()
    artifact = json.loads(text)
    assert fit_id(artifact) == fid
    assert text == json.dumps(artifact, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
    assert artifact["training"]["spine_rows"] == 50
    # the statistics are those of the pre-transform backfill
    raw = tmp_path / "raw.parquet"
    assert backfill(project, data, raw, "fraud_model@v1").returncode == 0
    sums = pl.read_parquet(raw).get_column("tx_sum_7d").to_numpy()
    z = artifact["transforms"]["spend_scaled@v1.tx_sum_7d_z#0"]["stats"]
    assert z["center"] == pytest.approx(sums.mean(), rel=1e-12)
    assert z["scale"] == pytest.approx(sums.std(ddof=0), rel=1e-12)
    # and the transformed backfill applies them
    out = tmp_path / "scaled.parquet"
    r = backfill(project, data, out)
    assert r.returncode == 0, r.stderr
    got = pl.read_parquet(out).get_column("tx_sum_7d_z").to_numpy()
    np.testing.assert_allclose(got, (sums - z["center"]) / z["scale"], rtol=0, atol=1e-12)
    # refitting the same data gives the same id; `compile --lock` keeps the pin
    r = fit(project, data)
    assert r.returncode == 0 and "unchanged" in r.stdout, r.stdout + r.stderr
    assert astra("compile", str(project), "--lock").returncode == 0
    assert lock(project)["fits"][SERVICE]["id"] == fid


def test_a_training_range_changes_the_fit(project: Path, data: Path) -> None:
    spine = pl.read_parquet(data / "spine.parquet")
    middle = spine.get_column("ts").sort()[25]
    r = fit(project, data, "--end", middle.isoformat())
    assert r.returncode == 0, r.stderr
    artifact = json.loads((project / "fits" / f"{lock(project)['fits'][SERVICE]['id']}.json").read_text())
    assert artifact["training"]["spine_rows"] == int((spine.get_column("ts") < middle).sum())
    assert artifact["training"]["end"].startswith(middle.isoformat()[:19])


def test_a_missing_fit_is_refused_by_backfill_and_the_other_services_still_run(project: Path, data: Path,
                                                                                tmp_path: Path) -> None:
    data_lock = lock(project)
    del data_lock["fits"]
    (project / "astra.lock").write_text(json.dumps(data_lock))
    r = backfill(project, data, tmp_path / "o.parquet")
    assert r.returncode == 1
    line = one_error_line(r.stderr)
    assert SERVICE in line and "astra fit" in line and "spend_scaled@v1." in line
    assert not (tmp_path / "o.parquet").exists()
    assert backfill(project, data, tmp_path / "v1.parquet", "fraud_model@v1").returncode == 0


def test_a_missing_or_edited_artifact_is_refused(project: Path, data: Path, tmp_path: Path) -> None:
    fid = lock(project)["fits"][SERVICE]["id"]
    path = project / "fits" / f"{fid}.json"
    artifact = json.loads(path.read_text())
    artifact["transforms"]["spend_scaled@v1.tx_sum_7d_z#0"]["stats"]["scale"] = 1.0
    path.write_text(json.dumps(artifact))
    r = backfill(project, data, tmp_path / "o.parquet")
    assert r.returncode == 1
    assert "does not match its id" in r.stderr and "astra fit" in one_error_line(r.stderr)
    path.unlink()
    r = backfill(project, data, tmp_path / "o.parquet")
    assert r.returncode == 1 and f"fits/{fid}.json is missing" in r.stderr, r.stderr


def test_a_stale_fit_is_refused_until_refitted(project: Path, data: Path, tmp_path: Path) -> None:
    scores = project / "scores.feat"
    two = "    spend_scaled@v1.tx_sum_7d_z\n    spend_scaled@v1.tx_mean_7d_filled\n"
    scores.write_text(scores.read_text().replace("    spend_scaled@v1.*\n", two))
    r = backfill(project, data, tmp_path / "o.parquet")
    assert r.returncode == 1
    assert "stale" in r.stderr and "astra fit" in one_error_line(r.stderr)
    r = fit(project, data)
    assert r.returncode == 0, r.stderr
    assert backfill(project, data, tmp_path / "o.parquet").returncode == 0
    assert pl.read_parquet(tmp_path / "o.parquet").columns[-2:] == ["tx_sum_7d_z", "tx_mean_7d_filled"]


@pytest.mark.parametrize(("args", "code", "message"), [
    (("--spine", "nowhere.parquet"), 1, "no such file"),
    (("--start", "2030-01-01"), 1, "no spine rows in the training range"),
    (("--start", "2026-02-01", "--end", "2026-01-01"), 2, "--end must be after --start"),
    (("--time-column", "when"), 1, "spine has no time column `when`"),
    (("--service", "fraud_model@v1"), 1, "applies no fitted transform"),
    (("--service", "fraud_scorez@v1"), 1, "unknown service `fraud_scorez`"),
])
def test_bad_input_is_one_line_and_changes_nothing(project: Path, data: Path, args, code: int, message: str) -> None:
    before, fits = (project / "astra.lock").read_text(), sorted((project / "fits").iterdir())
    base = {"--service": SERVICE, "--spine": str(data / "spine.parquet")}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    flat = [x for kv in base.items() for x in kv] + [a for a in args if a not in base and a not in base.values()]
    r = astra("fit", str(project), "--data-root", str(data), *flat)
    assert r.returncode == code, r.stdout + r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert (project / "astra.lock").read_text() == before
    assert sorted((project / "fits").iterdir()) == fits


def test_the_online_store_refuses_an_unfitted_service_per_query(project: Path, data: Path) -> None:
    from astra.online import OnlineError
    from astra.project import Project

    data_lock = lock(project)
    del data_lock["fits"]
    (project / "astra.lock").write_text(json.dumps(data_lock))
    store = Project.load(project).store(data_root=data)
    assert store.get("fraud_model@v1", [{"user_id": 1}]).rows()  # the others are served
    with pytest.raises(OnlineError, match="astra fit"):
        store.get(SERVICE, [{"user_id": 1}])
    with pytest.raises(OnlineError, match="astra fit"):
        Project.load(project).store(data_root=data, services=[SERVICE])


TARGET = """import "spend.feat"

features spend_target v1 for user {
    category_risk: float64 = target_encode(user_spend@v1.last_category, LABEL, 3)
    category: string? = user_spend@v1.last_category
}

service te_scores v1 { spend_target@v1.category_risk }
service te_raw v1 { spend_target@v1.category }
"""


def _target_project(project: Path, label: str = "label") -> None:
    (project / "target.feat").write_text(TARGET.replace("LABEL", label))


def _run(*args: str) -> subprocess.CompletedProcess:
    return astra(*args, "--allow-unlocked")


def test_target_encoding_is_out_of_fold_on_its_own_training_rows_only(project: Path, data: Path,
                                                                      tmp_path: Path) -> None:
    from astra.ops.target_encode import fold_of

    _target_project(project)
    spine = data / "spine.parquet"
    r = _run("fit", str(project), "--service", "te_scores@v1", "--spine", str(spine), "--data-root", str(data))
    assert r.returncode == 0, r.stderr
    fid = lock(project)["fits"]["te_scores@v1"]["id"]
    stats = json.loads((project / "fits" / f"{fid}.json").read_text())["transforms"][
        "spend_target@v1.category_risk#0"]["stats"]
    cats, k = stats["categories"], stats["folds"]
    assert k == 5 and len(stats["fold_encodings"]) == k * len(cats)

    def encode(out: Path, spine_path: Path) -> list[float]:
        r = _run("backfill", str(project), "--service", "te_scores@v1", "--spine", str(spine_path),
                 "--data-root", str(data), "--out", str(out))
        assert r.returncode == 0, r.stderr
        return pl.read_parquet(out).get_column("category_risk").to_list()

    raw = tmp_path / "raw.parquet"
    assert _run("backfill", str(project), "--service", "te_raw@v1", "--spine", str(spine), "--data-root", str(data),
                "--out", str(raw)).returncode == 0
    frame = pl.read_parquet(raw)
    categories, users = frame.get_column("category").to_list(), frame.get_column("user_id").to_list()

    def full(c):
        return stats["encodings"][cats.index(c)] if c in cats else stats["prior"]

    def out_of_fold(c, user):
        f = fold_of(user)
        return stats["fold_encodings"][f * len(cats) + cats.index(c)] if c in cats else stats["fold_priors"][f]

    # the fit's own spine: every row encoded with the statistics of the folds its user is not in
    oof = encode(tmp_path / "oof.parquet", spine)
    assert oof == [out_of_fold(c, u) for c, u in zip(categories, users)]
    assert oof != [full(c) for c in categories]
    # other rows (here: all but the last): the full fit, as served
    part = tmp_path / "part.parquet"
    pl.read_parquet(spine).head(-1).write_parquet(part)
    assert encode(tmp_path / "full.parquet", part) == [full(c) for c in categories[:-1]]
    from astra.project import Project

    # served: the full fit
    store = Project.load(project, allow_unlocked=True).store(data_root=data, services=["te_scores@v1", "te_raw@v1"])
    keys = [{"user_id": u} for u in sorted(set(users))]
    served = [r["category_risk"] for r in store.get("te_scores@v1", keys).rows()]
    assert served == [full(r["category"]) for r in store.get("te_raw@v1", keys).rows()]


def test_target_encoding_without_its_label_column_is_a_one_line_error(project: Path, data: Path) -> None:
    _target_project(project, "is_fraud")
    r = _run("fit", str(project), "--service", "te_scores@v1", "--spine", str(data / "spine.parquet"),
             "--data-root", str(data))
    assert r.returncode == 1
    assert "no label column `is_fraud`" in one_error_line(r.stderr)


def test_out_of_fold_follows_the_training_rows_in_any_order_within_the_range(project: Path, data: Path,
                                                                           tmp_path: Path) -> None:
    from astra.ops.target_encode import fold_of

    _target_project(project)
    spine = pl.read_parquet(data / "spine.parquet")
    middle = spine.get_column("ts").sort()[30]
    r = _run("fit", str(project), "--service", "te_scores@v1", "--spine", str(data / "spine.parquet"),
             "--data-root", str(data), "--end", middle.isoformat())
    assert r.returncode == 0, r.stderr
    fid = lock(project)["fits"]["te_scores@v1"]["id"]
    stats = json.loads((project / "fits" / f"{fid}.json").read_text())["transforms"][
        "spend_target@v1.category_risk#0"]["stats"]
    cats = stats["categories"]
    shuffled = tmp_path / "shuffled.parquet"
    spine.reverse().write_parquet(shuffled)  # the same rows, another order, and rows after the range

    def run(service: str, out: Path, spine_path: Path) -> pl.DataFrame:
        r = _run("backfill", str(project), "--service", service, "--spine", str(spine_path), "--data-root", str(data),
                 "--out", str(out))
        assert r.returncode == 0, r.stderr
        return pl.read_parquet(out)

    got = run("te_scores@v1", tmp_path / "o.parquet", shuffled)
    raw = run("te_raw@v1", tmp_path / "raw.parquet", shuffled)
    want = []
    for c, u in zip(raw.get_column("category").to_list(), raw.get_column("user_id").to_list()):
        f = fold_of(u)
        want.append(stats["fold_encodings"][f * len(cats) + cats.index(c)] if c in cats else stats["fold_priors"][f])
    assert got.get_column("category_risk").to_list() == want
    # dropping one training row: the full fit
    fewer = tmp_path / "fewer.parquet"
    spine.sort("ts").slice(1).write_parquet(fewer)
    got = run("te_scores@v1", tmp_path / "f.parquet", fewer).get_column("category_risk").to_list()
    raw = run("te_raw@v1", tmp_path / "fraw.parquet", fewer).get_column("category").to_list()
    assert got == [stats["encodings"][cats.index(c)] if c in cats else stats["prior"] for c in raw]


def test_parity_compares_the_training_spine_with_the_served_full_fit(project: Path, data: Path) -> None:
    _target_project(project)
    spine = str(data / "spine.parquet")
    r = _run("fit", str(project), "--service", "te_scores@v1", "--spine", spine, "--data-root", str(data))
    assert r.returncode == 0, r.stderr
    r = _run("parity", str(project), "--service", "te_scores@v1", "--spine", spine, "--data-root", str(data))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "MISMATCH" not in r.stdout

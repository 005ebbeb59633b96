"""Two services reading the same transformed features (the example's fraud_scores@v1 and @v2):
each runs on its own pinned fit only.  When one service's fit is missing or edited, the other's
still binds the shared features, yet every engine refuses the first (no statistics borrowed)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from astra.offline.errors import BackfillError
from astra.online import OnlineError
from astra.project import Project


def _fit_path(project: Path, service: str) -> Path:
    fid = json.loads((project / "astra.lock").read_text())["fits"][service]["id"]
    return project / "fits" / f"{fid}.json"


@pytest.mark.parametrize("damage", ["edited", "missing"])
def test_a_service_without_its_own_fit_is_refused_while_its_sibling_runs(project: Path, data: Path,
                                                                         damage: str) -> None:
    path = _fit_path(project, "fraud_scores@v1")
    if damage == "edited":
        artifact = json.loads(path.read_text())
        artifact["transforms"]["spend_scaled@v1.tx_sum_7d_z#0"]["stats"]["scale"] = 1.0
        path.write_text(json.dumps(artifact))
    else:
        path.unlink()
    proj = Project.load(project)
    assert any("fraud_scores@v1" in n or path.name in n for n in proj.notes), proj.notes
    v1, v2 = proj.service("fraud_scores@v1"), proj.service("fraud_scores@v2")
    assert v1.fingerprint.startswith("unfitted:") and not v2.fingerprint.startswith("unfitted:")
    spine = pl.read_parquet(data / "spine.parquet")
    with pytest.raises(BackfillError, match=r"fraud_scores@v1.*astra fit"):
        proj.backfill(spine, service="fraud_scores@v1", data_root=data)
    assert proj.backfill(spine, service="fraud_scores@v2", data_root=data).height == spine.height
    store = proj.store(data_root=data, services=["fraud_scores@v2"])
    assert store.get("fraud_scores@v2", [{"user_id": 1}]).rows()
    with pytest.raises(OnlineError, match="astra fit"):
        proj.store(data_root=data, services=["fraud_scores@v1"])


def test_both_fits_bind_when_present(project: Path) -> None:
    proj = Project.load(project)
    assert not proj.notes
    for sid in ("fraud_scores@v1", "fraud_scores@v2"):
        assert not proj.service(sid).fingerprint.startswith("unfitted:")

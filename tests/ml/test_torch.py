"""`astra.ml.torch.BackfillDataset` with a real PyTorch: the tensors are the backfill's values, a
DataLoader batches them, and a model trains on them.  Skipped cleanly when torch is absent (the
optional extra `astra[torch]`); tests/ml/test_optional.py runs this module without torch."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is the optional extra astra[torch]")

from astra.ml.torch import BackfillDataset  # noqa: E402

SERVICE = "fraud_model@v1"
CHOSEN = ["tx_count_7d", "tx_sum_7d", "tx_mean_30d", "tier"]


@pytest.fixture(scope="module")
def spine(demo) -> pl.DataFrame:
    return pl.read_parquet(demo / "spine.parquet")


def test_tensors_are_the_backfill(project, demo, spine):
    data = BackfillDataset.from_backfill(project, SERVICE, spine, data_root=demo, features=CHOSEN, target="label")
    frame = project.backfill(spine, service=SERVICE, data_root=demo)
    assert len(data) == spine.height and data.feature_names == tuple(CHOSEN)
    assert data.features.dtype == torch.float32 and data.features.shape == (spine.height, len(CHOSEN))
    want = frame.select(CHOSEN).to_numpy().astype(np.float32)  # nulls -> NaN, as Polars converts them
    np.testing.assert_array_equal(data.features.numpy(), want)
    assert math.isnan(float(data.features[:, 2].min())) or frame["tx_mean_30d"].null_count() == 0
    assert data.target.tolist() == spine["label"].to_list()
    x, y = data[3]
    assert x.shape == (len(CHOSEN),) and int(y) == spine["label"][3]


def test_a_dataloader_batches_and_a_model_trains(project, demo, spine):
    # a label defined by the features themselves, so a linear model can learn it
    frame = project.backfill(spine, service=SERVICE, data_root=demo)
    frame = frame.with_columns(big=(pl.col("tx_sum_7d") > pl.col("tx_sum_7d").median()).cast(pl.Float32))
    data = BackfillDataset(frame, ["tx_count_7d", "tx_sum_7d"], "big", fill_null=0.0)
    loader = torch.utils.data.DataLoader(data, batch_size=64, shuffle=False)
    xs, ys = zip(*loader)
    assert torch.equal(torch.cat(xs), data.features) and torch.equal(torch.cat(ys), data.target)
    torch.manual_seed(0)
    mean, std = data.features.mean(dim=0), data.features.std(dim=0)
    scale = lambda x: (x - mean) / std  # noqa: E731
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def loss() -> float:
        with torch.no_grad():
            return float(loss_fn(model(scale(data.features)).squeeze(1), data.target))

    before = loss()
    for _ in range(100):
        for x, y in torch.utils.data.DataLoader(data, batch_size=64, shuffle=True):
            opt.zero_grad()
            loss_fn(model(scale(x)).squeeze(1), y).backward()
            opt.step()
    assert loss() < before
    with torch.no_grad():
        predicted = (model(scale(data.features)).squeeze(1) > 0).float()
    assert float((predicted == data.target).float().mean()) >= 0.9


def test_kinds_of_columns(spine):
    t0 = dt.datetime(2026, 1, 1)
    frame = pl.DataFrame({"n": [1, None], "b": [True, False], "t": [t0, t0 + dt.timedelta(seconds=1)],
                          "d": [dt.timedelta(milliseconds=1), None], "s": ["a", "b"], "y": [0, 1]})
    data = BackfillDataset(frame, ["n", "b", "t", "d"], "y", dtype=torch.float64, target_dtype=torch.float32)
    assert data.features.dtype == torch.float64 and data.target.dtype == torch.float32
    t0_us = (t0 - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)
    assert data.features[0].tolist() == [1.0, 1.0, t0_us, 1000.0]
    assert math.isnan(data.features[1, 0]) and math.isnan(data.features[1, 3])
    assert len(BackfillDataset(frame.to_pandas(), ["n"])) == 2 and BackfillDataset(frame, ["n"])[0].shape == (1,)
    with pytest.raises(TypeError, match=r"`s` \(String\) have no single number per row"):
        BackfillDataset(frame, target="y")
    with pytest.raises(ValueError, match="features: no column `nope`"):
        BackfillDataset(frame, ["nope"])
    with pytest.raises(ValueError, match="target: no column `label`"):
        BackfillDataset(frame, ["n"], "label")

"""Deterministic demo data for the example project, so `astra demo` needs nothing but astra.

Shaped like production card data: Zipf-hot users, exact timestamp ties, ~1% null amounts,
profiles that change over time, users with no history, and spine rows placed exactly on
window edges so the point-in-time rules are exercised.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

US = 1_000_000
DAY = 86400 * US
START = dt.datetime(2026, 1, 1)


def generate(out: Path, *, events: int = 200_000, users: int = 5_000, labels: int = 20_000, seed: int = 11) -> None:
    """Write transactions.parquet, profiles.parquet, spine.parquet, products.parquet and
    product_spine.parquet into `out`."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    base = int((START - dt.datetime(1970, 1, 1)).total_seconds()) * US
    ranks = np.minimum(rng.zipf(1.4, size=events), users)
    user_ids = (rng.permutation(users) + 1)[ranks - 1].astype(np.int64)
    ts = base + rng.integers(0, 60 * DAY // US, size=events) * US
    ties = rng.random(events) < 0.2
    ts[ties] = ts[ties] // (60 * US) * (60 * US)
    amount = np.round(rng.lognormal(3.0, 1.0, size=events), 2)
    tx = pl.DataFrame({
        "user_id": user_ids,
        "merchant_id": rng.integers(1, 500, size=events).astype(np.int64),
        "amount": pl.Series(amount).set(pl.Series(rng.random(events) < 0.01), None),
        "category": np.array([f"cat_{i:02d}" for i in range(12)])[rng.integers(0, 12, size=events)],
        "ts": pl.Series(ts).cast(pl.Datetime("us")),
    })
    tx.write_parquet(out / "transactions.parquet")

    n_prof = users * 2
    pl.DataFrame({
        "user_id": rng.integers(1, users + 1, size=n_prof).astype(np.int64),
        "country": np.array(["US", "DE", "FR", "IN", "BR", "JP"])[rng.integers(0, 6, size=n_prof)],
        "tier": rng.integers(0, 4, size=n_prof).astype(np.int32),
        "credit_limit": np.round(rng.uniform(500, 20_000, size=n_prof), 0),
        "updated_at": pl.Series(base + rng.integers(0, 60 * DAY // US, size=n_prof) * US).cast(pl.Datetime("us")),
    }).write_parquet(out / "profiles.parquet")

    spine_users = rng.integers(1, users + 50, size=labels).astype(np.int64)  # some users have no rows
    spine_ts = base + (20 * DAY // US + rng.integers(0, 40 * DAY // US, size=labels)) * US
    on_edge = rng.random(labels) < 0.05  # exactly one window after a real event
    pick = rng.integers(0, events, size=int(on_edge.sum()))
    spine_users[on_edge] = user_ids[pick]
    spine_ts[on_edge] = ts[pick] + np.array([0, 3600 * US, DAY, 7 * DAY])[rng.integers(0, 4, size=pick.size)]
    pl.DataFrame({
        "user_id": spine_users,
        "merchant_id": rng.integers(1, 500, size=labels).astype(np.int64),
        "ts": pl.Series(spine_ts).cast(pl.Datetime("us")),
        "amount": np.round(rng.lognormal(3.0, 1.2, size=labels), 2),
        "channel": pl.Series(np.array(["web", "pos", "app"])[rng.integers(0, 3, size=labels)]).set(
            pl.Series(rng.random(labels) < 0.1), None),
        "label": (rng.random(labels) < 0.05).astype(np.int8),
    }).write_parquet(out / "spine.parquet")
    products(out, base)


def add_products(out: Path) -> None:
    """Give a data directory made by the shared benchmark kit (transactions, profiles, labels) the
    example project's product catalogue, which the kit does not generate, dated from its first
    transaction; `astra serve features/` materializes every source, so it needs one."""
    import polars as pl

    out = Path(out)
    if (out / "products.parquet").exists():
        return
    first = pl.scan_parquet(out / "transactions.parquet").select(pl.col("ts").min()).collect().item()
    base = first if isinstance(first, int) else int(pl.Series([first]).cast(pl.Datetime("us")).cast(pl.Int64)[0])
    products(out, base)


def products(out: Path, base: int, *, count: int = 300, dim: int = 16, seed: int = 5) -> None:
    """A product catalogue: per product a category and a 16-float embedding near its category's
    centre; a fifth of the products change later (a new row: new embedding, maybe a new category)."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    categories = np.array(["shoes", "bags", "hats", "watches", "phones", "laptops"])
    centres = rng.normal(0.0, 1.0, size=(len(categories), dim))
    cat = rng.integers(0, len(categories), size=count)
    ids = np.array([f"p{i:04d}" for i in range(1, count + 1)])
    first = base + rng.integers(0, 20 * DAY // US, size=count) * US
    changed = np.flatnonzero(rng.random(count) < 0.2)
    later = first[changed] + rng.integers(1, 30 * DAY // US, size=changed.size) * US
    new_cat = np.where(rng.random(changed.size) < 0.3, rng.integers(0, len(categories), size=changed.size),
                       cat[changed])
    all_cat = np.concatenate([cat, new_cat])
    emb = centres[all_cat] + rng.normal(0.0, 0.35, size=(all_cat.size, dim))
    pl.DataFrame({
        "product_id": np.concatenate([ids, ids[changed]]),
        "category": categories[all_cat],
        "price": np.round(rng.lognormal(3.5, 0.8, size=all_cat.size), 2),
        "embedding": pl.Series(emb.astype(np.float32).tolist(), dtype=pl.Array(pl.Float32, dim)),
        "updated_at": pl.Series(np.concatenate([first, later])).cast(pl.Datetime("us")),
    }).write_parquet(out / "products.parquet")
    # a spine for "k nearest at t" (`astra backfill --neighbors`): products at times across the
    # catalogue's life, some exactly when a product changed, one product that never existed
    pick = np.random.default_rng(seed + 1)
    rows = 200
    keys = ids[pick.integers(0, count, size=rows)]
    ts = base + pick.integers(0, 50 * DAY // US, size=rows) * US
    edge = pick.choice(rows, size=changed.size // 2, replace=False)
    keys[edge], ts[edge] = ids[changed[: edge.size]], later[: edge.size]
    keys[0] = "p9999"
    pl.DataFrame({"product_id": keys, "ts": pl.Series(ts).cast(pl.Datetime("us"))}).write_parquet(
        out / "product_spine.parquet")

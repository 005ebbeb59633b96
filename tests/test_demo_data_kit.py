"""A data directory from the shared benchmark kit gets the example project's product catalogue."""

from __future__ import annotations

import shutil

import polars as pl

from astra import demo_data


def test_add_products_dates_the_catalogue_from_the_first_transaction_and_keeps_an_existing_one(small_demo, tmp_path):
    shutil.copy(small_demo / "transactions.parquet", tmp_path)
    demo_data.add_products(tmp_path)
    products = pl.read_parquet(tmp_path / "products.parquet")
    first = pl.read_parquet(tmp_path / "transactions.parquet")["ts"].min()
    assert products.height > 0 and products["updated_at"].min() >= first
    assert products["product_id"].n_unique() < products.height  # later rows change some products
    marker = pl.DataFrame({"product_id": ["x"]})
    marker.write_parquet(tmp_path / "products.parquet")
    demo_data.add_products(tmp_path)  # already there: left alone
    assert pl.read_parquet(tmp_path / "products.parquet").equals(marker)

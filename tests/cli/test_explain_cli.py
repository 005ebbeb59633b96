"""`astra explain` on the example project, run through click: null policies and unknown names."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from astra.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]


def explain(name: str):
    return CliRunner().invoke(cli, ["explain", name, str(ROOT / "features")])


def aggregate_line(out: str, call: str) -> str:
    """The line under an aggregation's own line (`  count(transactions, 7d): int64`)."""
    lines = out.splitlines()
    i = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{call}:"))
    return lines[i + 1]


def test_count_of_a_source_counts_every_row_nulls_included() -> None:
    r = explain("user_spend@v1.tx_count_7d")
    assert r.exit_code == 0, r.output
    line = aggregate_line(r.output, "count(transactions, 7d)")
    assert "counts every row, nulls included" in line and "ignored" not in line


def test_count_of_a_column_counts_its_non_null_values() -> None:
    r = explain("amounts_seen")
    assert r.exit_code == 0, r.output
    assert "counts non-null values of `amount`" in aggregate_line(r.output, "count(transactions.amount)")


def test_other_aggregations_ignore_null_values() -> None:
    r = explain("user_spend@v1.tx_mean_7d")
    assert r.exit_code == 0, r.output
    assert "null values of `amount` ignored" in aggregate_line(r.output, "mean(transactions.amount, 7d)")


def test_a_where_filter_drops_rows_whose_condition_is_not_true() -> None:
    r = explain("user_spend@v2.big_tx_7d")
    assert r.exit_code == 0, r.output
    line = aggregate_line(r.output, "count(transactions where (amount > 100.0), 7d)")
    assert "`where` filter is not true left out" in line and "counts every row" in line


def test_an_unknown_name_gets_a_did_you_mean_in_the_form_it_was_written() -> None:
    for typo, meant in [("tx_mean_7", "tx_mean_7d"), ("user_spend@v1.tx_man_7d", "user_spend@v1.tx_mean_7d"),
                        ("user_spnd.tx_mean_7d", "user_spend.tx_mean_7d")]:
        r = explain(typo)
        assert r.exit_code == 1
        assert f"error: no feature matches `{typo}`; did you mean `{meant}`?" in r.output


def test_a_name_close_to_nothing_gets_no_guess() -> None:
    r = explain("zzz")
    assert r.exit_code == 1
    assert "no feature matches `zzz`" in r.output and "did you mean" not in r.output

"""Fingerprints ignore layout and unrelated edits, and move with every change of logic."""

from __future__ import annotations

from astra.compiler import compile_project


def fingerprints(write_project, text: str) -> dict[str, tuple[str, str]]:
    result = compile_project(write_project(text), lock="ignore")
    assert result.ok, result.diagnostics
    return {g.id: (g.data_fingerprint, g.meta_fingerprint) for g in result.plan.groups}


def test_layout_and_comments_do_not_matter(write_project, base) -> None:
    squashed = base.replace("\n    ", "  ").replace("{\n", "{ ")
    commented = "# a comment\n" + base.replace("features spend v1", "# spend!\nfeatures spend v1")
    before = fingerprints(write_project, base)
    assert fingerprints(write_project, squashed) == before
    assert fingerprints(write_project, commented) == before


def test_unrelated_declarations_and_order_do_not_matter(write_project, base) -> None:
    blocks = base.split("\n\n")
    reordered = "\n\n".join([*blocks[:3], blocks[6], blocks[5], blocks[4], blocks[3], *blocks[7:]])
    extra = base + "\nfeatures unrelated v1 for user { n: int64 = count(transactions, 1d) }\n"
    before = fingerprints(write_project, base)
    assert fingerprints(write_project, reordered) == before
    assert {k: v for k, v in fingerprints(write_project, extra).items() if k in before} == before


def test_logic_changes_move_the_data_fingerprint_only(write_project, base) -> None:
    before = fingerprints(write_project, base)
    # (edit, does it change tx_sum_7d, which derived@v1 reads?)
    for edit, reaches_derived in [
        (("sum(transactions.amount, 7d)", "sum(transactions.amount, 8d)"), True),
        (("tx_count_7d: int64 = count(transactions, 7d)", "tx_count_7d: int64 = count(transactions.amount, 7d)"),
         False),
        (("mean_7d: float64? = tx_sum_7d / tx_count_7d", "mean_7d: float64? = tx_sum_7d / tx_count_7d default 1.0"),
         False),
        (("amount: float64?", "amount: float64"), True),  # a schema change of a source it reads
    ]:
        changed = fingerprints(write_project, base.replace(*edit))
        assert changed["spend@v1"][0] != before["spend@v1"][0], edit
        assert changed["spend@v1"][1] == before["spend@v1"][1], edit
        # a dependant group changes exactly when a feature it reads does
        assert (changed["derived@v1"][0] != before["derived@v1"][0]) == reaches_derived, edit
        assert changed["profile@v1"] == before["profile@v1"], edit


def test_metadata_changes_move_the_metadata_fingerprint_only(write_project, base) -> None:
    before = fingerprints(write_project, base)
    changed = fingerprints(write_project, base.replace('owner "risk@example.com"', 'owner "fraud@example.com"'))
    assert changed["spend@v1"][0] == before["spend@v1"][0]
    assert changed["spend@v1"][1] != before["spend@v1"][1]

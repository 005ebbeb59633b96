"""The language server's completion and hover names come from the registries (astra/lsp/operators.py):
every aggregation, function and fitted transform the checker accepts has a signature, and an
aggregation's parameter is named in it."""

from __future__ import annotations

from astra.lang.check import FUNCTIONS
from astra.lsp.operators import signatures
from astra.ops.aggregations import AGGREGATIONS
from astra.ops.transforms import TRANSFORMS


def test_every_callable_name_has_a_signature_with_a_doc():
    sigs = signatures()
    assert set(sigs) == {*FUNCTIONS, *TRANSFORMS, *AGGREGATIONS}
    for name, sig in sigs.items():
        assert sig.label.startswith(f"{name}(") and sig.doc, name
    assert sigs["standard_scale"].doc.startswith("fitted transform: ") and sigs["standard_scale"].kind == "function"
    assert sigs["ordinal"].label.startswith("ordinal(")  # the stateless encoder keeps its own signature


def test_an_aggregation_signature_names_its_parameter():
    sigs = signatures()
    assert sigs["last_k"].label == "last_k(source.column [where condition], k[, window])"
    assert sigs["percentile"].label == "percentile(source.column [where condition], q[, window])"
    assert sigs["exp_decay_sum"].label == "exp_decay_sum(source.column [where condition], half_life[, window])"
    assert sigs["count"].label == "count(source[.column] [where condition][, window])"
    for name, agg in AGGREGATIONS.items():
        assert (", [" in sigs[name].label) is False, name  # no empty parameter slot
        if agg.takes_param:
            assert f", {agg.param_name()}[, window])" in sigs[name].label, name

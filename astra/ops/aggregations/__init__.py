"""Windowed aggregations over the visible rows of an events source: the registry.

Each aggregation is declared once, in a module of its family (`base` holds what they share:
the `Aggregation` class and its helpers); its kernels call the engines only through the window
structures of `astra.ops.structures`.  `AGGREGATIONS` maps each name the language accepts to its
declaration: adding an aggregation is a class in a module of `astra.ops` and one line here.
"""

from __future__ import annotations

from astra.ops.aggregations.base import Aggregation, _masked, _need, _present
from astra.ops.aggregations.counting import Count
from astra.ops.aggregations.distinct import CountDistinct
from astra.ops.aggregations.extremes import Max, Min
from astra.ops.aggregations.moments import Stddev, Variance
from astra.ops.aggregations.positional import First, Last, LastK
from astra.ops.aggregations.sums import Mean, Sum

AGGREGATIONS: dict[str, Aggregation] = {
    a.name: a
    for a in (Count(), Sum(), Mean(), Min(), Max(), First(), Last(), CountDistinct(), Variance(), Stddev(),
              LastK())
}

# Aggregations over `Segments` (their modules build on `base`), one line each
from astra.ops import agg_decay, agg_histogram, agg_mode, agg_moments, agg_order, agg_sketch  # noqa: E402

AGGREGATIONS["first_k"] = agg_order.FirstK()
AGGREGATIONS["top_k"] = agg_order.TopK()
AGGREGATIONS["bottom_k"] = agg_order.BottomK()
AGGREGATIONS["median"] = agg_order.Median()
AGGREGATIONS["percentile"] = agg_order.Percentile()
AGGREGATIONS["skew"] = agg_moments.Skew()
AGGREGATIONS["kurtosis"] = agg_moments.Kurtosis()
AGGREGATIONS["exp_decay_sum"] = agg_decay.ExpDecaySum()
AGGREGATIONS["approx_count_distinct"] = agg_sketch.ApproxCountDistinct()
AGGREGATIONS["approx_percentile"] = agg_sketch.ApproxPercentile()
AGGREGATIONS["mode"] = agg_mode.Mode()
AGGREGATIONS["histogram"] = agg_histogram.Histogram()

__all__ = ["AGGREGATIONS", "Aggregation", "_masked", "_need", "_present"]

"""Windowed aggregations over the visible rows of an events source: the registry.

Each aggregation is declared once, in a module of its family (`base` holds what they share:
the `Aggregation` class and its helpers); its kernels call the engines only through the window
structures of `astra.ops.structures`.  `AGGREGATIONS` maps each name the language accepts to its
declaration: adding an aggregation is a class in a module of this package and one entry here.
"""

from __future__ import annotations

from astra.ops.aggregations.base import Aggregation, _masked, _need, _present
from astra.ops.aggregations.counting import Count
from astra.ops.aggregations.decay import ExpDecaySum
from astra.ops.aggregations.distinct import CountDistinct
from astra.ops.aggregations.extremes import Max, Min
from astra.ops.aggregations.histogram import Histogram
from astra.ops.aggregations.mode import Mode
from astra.ops.aggregations.moments import Stddev, Variance
from astra.ops.aggregations.order import BottomK, FirstK, Median, Percentile, TopK
from astra.ops.aggregations.positional import First, Last, LastK
from astra.ops.aggregations.shape import Kurtosis, Skew
from astra.ops.aggregations.sketch import ApproxCountDistinct, ApproxPercentile
from astra.ops.aggregations.sums import Mean, Sum

AGGREGATIONS: dict[str, Aggregation] = {
    a.name: a
    for a in (Count(), Sum(), Mean(), Min(), Max(), First(), Last(), CountDistinct(), Variance(), Stddev(),
              LastK(), FirstK(), TopK(), BottomK(), Median(), Percentile(), Skew(), Kurtosis(), ExpDecaySum(),
              ApproxCountDistinct(), ApproxPercentile(), Mode(), Histogram())
}

__all__ = ["AGGREGATIONS", "Aggregation", "_masked", "_need", "_present"]

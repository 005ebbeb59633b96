"""The operator registry: every operator is declared once, with its type rule, its null policy,
its Polars lowering (offline), its numpy lowering (online) and a plain-Python reference.

`astra.ops.scalars` holds row-wise operators and functions; `astra.ops.aggregations` the
windowed aggregations.  Engines look operators up here and contain no operator-specific code.
"""

"""The offline engine: point-in-time correct backfills and batch snapshots over a compiled plan.

`backfill` computes a service's outputs for every row of a spine (entity keys + query time);
`snapshot` does the same for every entity seen in the sources on a schedule.  Both sort each
source once by a packed (entity, time) key and answer every window with binary searches over
prefix structures; see `astra.offline.windows`.  `ExecutionConfig` sets how (chunk sizes,
threads), never what.
"""

from astra.offline.backfill import backfill, snapshot
from astra.offline.errors import BackfillError
from astra.offline.execution import ExecutionConfig

__all__ = ["BackfillError", "ExecutionConfig", "backfill", "snapshot"]

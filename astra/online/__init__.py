"""The online engine: an embedded, incrementally maintained store and services compiled to numpy.

`Store(plan)` keeps, per source and entity, what the plan's windows and as-of lookups need;
`compile_service` lowers a service to vectorised numpy code; `parity.run_parity` replays the
offline data through a fresh store and compares with the offline engine.
"""

from astra.online.codegen import CompiledService, compile_service
from astra.online.errors import (
    FutureRowError,
    HorizonError,
    LateRowError,
    OnlineError,
    SchemaError,
    UnknownServiceError,
)
from astra.online.lookup import Lookup
from astra.online.result import Result
from astra.online.store import PushReport, Store

__all__ = ["CompiledService", "FutureRowError", "HorizonError", "LateRowError", "Lookup", "OnlineError", "PushReport",
           "Result", "SchemaError", "Store", "UnknownServiceError", "compile_service"]

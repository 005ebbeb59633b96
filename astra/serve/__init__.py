"""`astra serve`: the online store behind a versioned, observable, durable HTTP API.

`app.create_app(config)` builds the ASGI app (`app.py`) around an `Engine` (`engine.py`) that
owns the store, the push log and snapshots (`wal.py`), the cache (`cache.py`) and the metrics
(`metrics.py`).  `batch.py` coalesces concurrent cache misses into one store call,
`validate.py` checks bodies against the plan, `registry.py` describes the plan and
`openapi.py` the API (with `request_schema.py`, the JSON Schemas of the bodies the plan
accepts).  `server.py` runs it on granian or uvicorn.
"""

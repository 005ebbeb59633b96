"""Fixtures for the `astra serve` tests; they live in `serve_harness` (a unique module name, so
test modules import its helpers without colliding with other directories' conftest modules)."""

from serve_harness import api, demo, servers  # noqa: F401

"""Suite-wide rule: under CI (env CI=true) a test may not skip because ../shared/bench is absent.

The oracle and parity tests that need the shared benchmark kit skip on a developer's machine
without it; in CI such a skip would let a green run silently leave the DuckDB oracle out.
"""

from __future__ import annotations

import os

import pytest

SHARED_KIT_SKIPS = ("shared benchmark kit", "../shared/")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and in_ci() and isinstance(report.longrepr, tuple)):
        return
    reason = str(report.longrepr[2])
    if any(marker in reason for marker in SHARED_KIT_SKIPS):
        report.outcome = "failed"
        report.longrepr = f"CI=true but the shared benchmark kit is needed and absent: {reason}"

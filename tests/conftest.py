"""Suite-wide fixtures and one rule.

The rule: under CI (env CI=true) a test may not skip because ../shared/bench is absent.

The oracle and parity tests that need the shared benchmark kit skip on a developer's machine
without it; in CI such a skip would let a green run silently leave the DuckDB oracle out.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

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


# -- the example project over small demo data, shared by the Python API, client and modelling tests
EXAMPLE_FEATURES = Path(__file__).resolve().parents[1] / "features"


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory) -> Path:
    """Demo data small enough for many tests (3,000 events, 80 users, 400 labels), made once."""
    from astra import demo_data

    d = tmp_path_factory.mktemp("demo")
    demo_data.generate(d, events=3000, users=80, labels=400, seed=5)
    return d


@pytest.fixture(scope="session")
def example_project(tmp_path_factory):
    """A copy of the example project (tests may write its build/ folder), loaded once."""
    import astra

    proj = tmp_path_factory.mktemp("project") / "features"
    shutil.copytree(EXAMPLE_FEATURES, proj, ignore=shutil.ignore_patterns("build"))
    return astra.Project.load(proj)


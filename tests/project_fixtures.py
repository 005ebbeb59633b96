"""Fixtures for tests that edit the example project: a small demo data set and a fresh copy of
features/.  Import them into a conftest or test module that needs them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from astra.demo_data import generate

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Demo source files and a spine (1,000 events over 30 users, 50 spine rows), made once per test module."""
    out = tmp_path_factory.mktemp("data")
    generate(out, events=1_000, users=30, labels=50)
    return out


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of features/ without its build directory, free to edit."""
    shutil.copytree(ROOT / "features", tmp_path / "features", ignore=shutil.ignore_patterns("build"))
    return tmp_path / "features"

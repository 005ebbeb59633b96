"""Fixtures for the modelling entry points: the suite's small demo data and example project
(tests/conftest.py) under the names these tests use."""

from __future__ import annotations

from pathlib import Path

import pytest

import astra


@pytest.fixture(scope="session")
def demo(small_demo) -> Path:
    return small_demo


@pytest.fixture(scope="session")
def project(example_project) -> astra.Project:
    return example_project

"""Fixtures for the modelling entry points: small demo data and a copy of the example project."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import astra
from astra import demo_data

FEATURES = Path(__file__).resolve().parents[2] / "features"


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("demo")
    demo_data.generate(d, events=3000, users=80, labels=400, seed=5)
    return d


@pytest.fixture(scope="session")
def project(tmp_path_factory) -> astra.Project:
    proj = tmp_path_factory.mktemp("project") / "features"
    shutil.copytree(FEATURES, proj, ignore=shutil.ignore_patterns("build"))
    return astra.Project.load(proj)

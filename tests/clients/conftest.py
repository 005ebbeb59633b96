"""Fixtures for the Python clients: one live `astra serve` over the demo data and an `astra.Online`
over the same project and data, so every test can ask both the same question.

The server comes from the serve tests' harness (`tests/serve/serve_harness.py`: a real process on
a free loopback port, bounded start-up, stopped at teardown)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serve"))

from serve_harness import FEATURES, free_port, launch

import astra
from astra import demo_data

TOKEN = "s3cret"
LATENESS_US = 10 * 86_400 * 10**6  # 10 days back from the newest event stay answerable


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("demo")
    demo_data.generate(d, events=3000, users=80, labels=200, seed=5)
    return d


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> astra.Project:
    proj = tmp_path_factory.mktemp("project") / "features"
    shutil.copytree(FEATURES, proj, ignore=shutil.ignore_patterns("build"))
    return astra.Project.load(proj)


@pytest.fixture(scope="module")
def server(tmp_path_factory, project, demo):
    state = tmp_path_factory.mktemp("serve") / "state"
    s = launch(project.path, state, "--data-root", str(demo), "--allowed-lateness", str(LATENESS_US), token=TOKEN)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(server):
    with astra.Client(server.url, token=TOKEN, timeout=15.0) as c:
        yield c


@pytest.fixture(scope="module")
def online(project, demo):
    return astra.Online(project, data_root=demo, allowed_lateness=LATENESS_US)


@pytest.fixture
def dead_url() -> str:
    """A loopback URL nothing listens on."""
    return f"http://127.0.0.1:{free_port()}"

"""Fixtures for the Python clients: one live `astra serve` over the demo data and an `astra.Online`
over the same project and data, so every test can ask both the same question.

The server comes from the serve tests' harness (`tests/serve/serve_harness.py`: a real process on
a free loopback port, bounded start-up, stopped at teardown)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serve"))

from serve_harness import free_port, launch

import astra

TOKEN = "s3cret"
LATENESS_US = 10 * 86_400 * 10**6  # 10 days back from the newest event stay answerable


@pytest.fixture(scope="module")
def demo(small_demo) -> Path:
    return small_demo


@pytest.fixture(scope="module")
def project(example_project) -> astra.Project:
    return example_project


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

"""A real `astra lsp` process per test module, driven over stdio by pytest-lsp's client, on a copy
of the example project (`features/`, with its `astra.lock`)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

ROOT = Path(__file__).resolve().parents[2]
SERVER = [sys.executable, "-m", "astra.cli.main", "lsp"]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of the example project (its build/ left out), for the module's server to work on."""
    dest = tmp_path_factory.mktemp("lsp") / "features"
    shutil.copytree(ROOT / "features", dest, ignore=shutil.ignore_patterns("build"))
    return dest


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient, project: Path):
    lsp_client.registrations = []

    @lsp_client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register(client: LanguageClient, params: types.RegistrationParams) -> None:
        client.registrations.extend(params.registrations)  # as an editor does: accept it

    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"), root_uri=project.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=project.as_uri(), name="features")]))
    yield
    await lsp_client.shutdown_session()

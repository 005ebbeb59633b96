"""What `import astra` exposes for the clients and models, and that it stays cheap: the clients,
httpx, Polars and scikit-learn load on first use, not at import."""

from __future__ import annotations

import subprocess
import sys
import types

import astra


def test_names_and_docstrings():
    for name in ("Online", "Client", "ClientError", "FeatureClient"):
        assert name in astra.__all__ and name in dir(astra)
        assert (getattr(astra, name).__doc__ or "").strip(), name
    assert astra.ml.FeatureTransformer.__module__ == "astra.ml.sklearn"
    assert issubclass(astra.clients.NotFoundError, astra.ClientError)
    assert "torch" in dir(astra.ml) and "FeatureTransformer" in astra.ml.__all__
    stray = [n for n in dir(astra) if not n.startswith("_") and n not in astra.__all__
             and not isinstance(getattr(astra, n), types.ModuleType)]
    assert stray == []  # the public names and the submodules imported so far, nothing else


def test_import_astra_loads_no_client_library():
    code = ("import sys, astra; heavy = [m for m in ('httpx', 'polars', 'sklearn', 'torch', 'astra.clients', "
            "'astra.ml') if m in sys.modules]; print(heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
    code = "import sys, astra; astra.Online; print('httpx' in sys.modules, 'sklearn' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False False", done.stdout + done.stderr  # Online needs neither


def test_both_implementations_have_the_interfaces_signatures():
    import inspect

    from astra.clients.http import Client
    from astra.clients.inprocess import Online
    from astra.clients.protocol import FeatureClient

    for name in ("get", "push", "registry", "close"):
        want = inspect.signature(getattr(FeatureClient, name))
        for impl in (Online, Client):
            assert inspect.signature(getattr(impl, name)).parameters.keys() == want.parameters.keys(), (impl, name)


def test_client_arguments_are_checked():
    import pytest

    for url in ("127.0.0.1:8000", "ftp://x", None):
        with pytest.raises(ValueError, match="url: expected http://host:port"):
            astra.Client(url)
    with pytest.raises(ValueError, match="retries: expected 0 or more"):
        astra.Client("http://127.0.0.1:1", retries=-1)

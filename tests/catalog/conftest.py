"""Fixtures for the catalog tests: small demo data, the example project's site built from it, a
project full of hostile text, and a headless Chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest

from astra.catalog import build_site
from astra.demo_data import generate

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

HOSTILE = '<script>alert("x")</script> & \'quotes\' "double" <b>bold</b>'
HOSTILE_FEAT = HOSTILE.replace("\\", "\\\\").replace('"', '\\"')


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> Path:
    """Demo sources: 3,000 events over 40 users."""
    out = tmp_path_factory.mktemp("demo")
    generate(out, events=3_000, users=40, labels=50)
    return out


@pytest.fixture(scope="session")
def example(tmp_path_factory) -> Path:
    """A copy of the example project (features/), without its build directory."""
    dst = tmp_path_factory.mktemp("project") / "features"
    shutil.copytree(ROOT / "features", dst, ignore=shutil.ignore_patterns("build"))
    return dst


@pytest.fixture(scope="session")
def site(tmp_path_factory, example: Path, demo_data: Path) -> Path:
    """The example project's catalog, with statistics over every demo row (no sampling)."""
    out = tmp_path_factory.mktemp("site") / "site"
    build_site(example, out, data_root=demo_data, sample=1_000_000)
    return out


@pytest.fixture(scope="session")
def hostile(tmp_path_factory) -> Path:
    """A project whose every free text holds markup, quotes and a script tag; its site is built
    into `site` beside it."""
    root = tmp_path_factory.mktemp("hostile")
    project = root / "project"
    project.mkdir()
    h = HOSTILE_FEAT
    (project / "p.feat").write_text(f'''
# a comment with {h}
entity user {{
    description "{h}"
    key user_id: int64
}}
events clicks for user {{
    owner "{h}"
    description "{h}"
    path "clicks.parquet"
    time ts
    columns {{ user_id: int64  page: string }}
}}
request ctx {{
    description "{h}"
    note: string?
}}
features web v1 for user {{
    owner "{h}"
    description "{h}"
    tags ["{h}", "plain"]
    deprecated "{h}"
    n_1d: int64 = count(clicks, 1d) description "{h}"
    last_page: string = last(clicks.page) ?? "{h}"
    echo: string = ctx.note ?? "{h}"
}}
features web v2 for user {{
    description "`{h}` v2"
    n_1d: int64 = count(clicks where page != "{h}", 1d)
}}
service s v1 {{
    owner "{h}"
    description "{h}"
    request ctx
    web@v1.*
}}
''', encoding="utf-8")
    import polars as pl

    pl.DataFrame({"user_id": [1, 1, 2], "page": [HOSTILE, "/a", "/b"],
                  "ts": pl.Series([1_700_000_000_000_000, 1_700_000_100_000_000, 1_700_000_200_000_000])
                  .cast(pl.Datetime("us"))}).write_parquet(project / "clicks.parquet")
    build_site(project, root / "site", data_root=project, allow_unlocked=True)
    return root


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium; skipped, saying why, when Playwright or the browser cannot start."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as err:
        _skip(f"Playwright is not importable ({err})")
    if not CHROMIUM.exists():
        _skip(f"{CHROMIUM} does not exist (.ci/run installs Debian's chromium package)")
    try:
        pw = sync_playwright().start()
    except Exception as err:  # any failure to start is reported, then skipped
        _skip(f"Playwright could not start: {err}")
    try:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
    except Exception as err:
        pw.stop()
        _skip(f"Chromium ({CHROMIUM}) could not be launched: {' '.join(str(err).split())[:400]}")
    yield b
    b.close()
    pw.stop()


def _skip(why: str):
    message = f"BROWSER TESTS SKIPPED: {why}"
    warnings.warn(message, stacklevel=2)
    pytest.skip(message)

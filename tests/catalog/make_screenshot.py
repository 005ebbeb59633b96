"""Regenerate docs/images/catalog-feature.png: a feature page of the demo project's catalog.

    uv run astra demo && uv run astra docs features --data-root build/demo --out build/site
    uv run python tests/catalog/make_screenshot.py build/site
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAGE = "feature/user_spend.v1.spend_ratio_1d_30d.html"


def main(site: Path, out: Path = ROOT / "docs" / "images" / "catalog-feature.png") -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        page.goto((site / PAGE).resolve().as_uri())
        bottom = page.locator("#stats").bounding_box()
        height = int(bottom["y"] + bottom["height"] + 16)
        page.screenshot(path=str(out), full_page=True, clip={"x": 0, "y": 0, "width": 1100, "height": height})
        browser.close()
    print(f"{out} ({out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main(Path(sys.argv[1]))

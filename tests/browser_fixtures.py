"""Chromium for the browser tests: Debian's /usr/bin/chromium driven by Playwright (never `playwright install`).

Without Chromium the tests skip locally with the reason, and fail in CI (CI=true). Screenshots go to
test-artifacts/ (gitignored) for a person to look at.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from charrnn.runs.store import PROJECT_DIR

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = PROJECT_DIR / "test-artifacts"
TIMEOUT_MS = 90_000          # bounds a hung test only; nothing asserts on speed
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def chromium():
    """Yields a headless Chromium (for a module-scoped ``browser`` fixture), closed afterwards."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: install Debian's chromium package to run the browser tests"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    expect.set_options(timeout=TIMEOUT_MS)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


def script_page(*scripts):
    """Yields a blank page in headless Chromium with ``scripts`` loaded in order (paths, read as UTF-8, or source
    text), for a module-scoped ``page`` fixture that tests page code with no server; closed afterwards."""
    for browser in chromium():
        page = browser.new_page()
        page.set_content("<html><body></body></html>")
        for script in scripts:
            page.add_script_tag(content=script.read_text(encoding="utf-8") if isinstance(script, Path) else script)
        yield page
        page.close()

"""What the browser tests share: Debian's Chromium driven by Playwright (it cannot download its
own browsers here), the app served by werkzeug in a thread against a committed database of its
own, and logging in through the login page as a person would."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from instruction import PROJECT_ROOT
from instruction.extensions import db
from tests import factories

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))  # `make test-2031` sets it
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"  # screenshots, kept by CI
DESKTOP = {"width": 1280, "height": 900}


def require_chromium() -> None:
    """Fail (never skip) when the browser is missing: CI must run every browser test."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed: run `make test` (or `make browser-deps`).")


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """Serve ``app`` on a free port for the block; yields its base URL. The app's links (in
    e-mails) follow the served port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app.config["BASE_URL"] = base
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        thread.join(timeout=10)
        with app.app_context():
            db.engine.dispose()


@contextmanager
def chromium() -> Iterator:
    """A headless Chromium for the block."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def log_in(page, base: str, email: str, password: str = factories.PASSWORD) -> None:
    """The login form, filled and sent (an admin then meets the second-factor step)."""
    page.goto(f"{base}/connexion")
    page.get_by_label("Adresse électronique").fill(email)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Se connecter").click()

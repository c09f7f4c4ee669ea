"""A desktop program and its pages in real Chromium: the Tkinter example
under Xvfb steered by its page, a page opened from disk, and the demo's
publish form (screenshots in test-artifacts/)."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ssehub import BackgroundHub
from tests.support.desktop import find_window, screenshot, xdotool, xvfb
from tests.support.helpers import free_port, missing
from tests.support.processes import spawn, stop

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parent.parent.parent


def _shows(page: Any, selector: str, text: str, timeout: float = 10_000) -> None:
    page.wait_for_function(
        "([s, t]) => document.querySelector(s).textContent === t", arg=[selector, text],
        timeout=timeout,
    )  # fmt: skip


def test_the_tkinter_program_and_its_page_steer_each_other(browser: Any, artifacts: Path) -> None:
    try:
        import tkinter  # noqa: F401
    except ImportError:
        missing("this Python has no tkinter (Debian: python3-tk; pyenv: build with tk-dev)")
    port = free_port()
    with xvfb() as display:
        app = subprocess.Popen(
            [sys.executable, str(ROOT / "examples" / "desktop_app.py"), "--port", str(port)],
            env={**os.environ, "DISPLAY": display, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        page = browser.new_page(viewport={"width": 640, "height": 480})
        try:
            window = find_window(display, "ssehub desktop app")  # mapped after the hub started
            page.goto(f"http://127.0.0.1:{port}/")
            _shows(page, "#status", "live")
            _shows(page, "#counter", "0")
            _shows(page, "#text", "hello")
            # the page's button changes the program's state, which comes back
            page.click("#increment")
            page.click("#increment")
            _shows(page, "#counter", "2")
            # typing in the program's window shows in the page
            xdotool(display, "windowfocus", "--sync", window)
            xdotool(display, "type", "--delay", "20", " world")
            _shows(page, "#text", "hello world")
            assert page.text_content("#status") == "live"  # no refusal shown
            page.screenshot(path=str(artifacts / "desktop-app-page.png"))
            screenshot(display, artifacts / "desktop-app-window.png", window)
        finally:
            page.close()
            _, out, err = stop(app)
    assert 'state {"counter": 2, "text": "hello"}' in out, err  # the program's own state
    assert 'state {"counter": 2, "text": "hello world"}' in out, err


def test_a_page_on_disk_is_refused_with_a_reason_then_allowed(
    browser: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "ssehub.mercure")
    for allowed in ((), ("null",)):
        with BackgroundHub(port=0, cors_origins=allowed) as hub:
            html = tmp_path / "friend.html"
            html.write_text(
                "<!doctype html><p id=got>none</p><script>"
                f"const s = new EventSource('{hub.url}/.well-known/mercure?topic=news');"
                "s.onopen = () => { document.title = 'open'; };"
                "s.onerror = () => { document.title = 'error'; };"
                "s.onmessage = (e) => { got.textContent = e.data; };</script>"
            )
            page = browser.new_page()
            try:
                page.goto(html.as_uri())  # Origin: null
                page.wait_for_function("() => document.title !== ''")
                if not allowed:
                    assert page.title() == "error"  # a bare CORS error, in the browser
                else:
                    assert page.title() == "open"
                    hub.publish("news", "from the hub")
                    _shows(page, "#got", "from the hub")
            finally:
                page.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "ssehub.mercure"]
    # ...and one line on the hub's side says why and what to change
    assert lines == [
        "refused cross-origin request from Origin 'null' "
        "(allow it with --cors-origin null / cors_origins=('null',))"
    ]


def test_the_demo_dashboard_publish_form_publishes(browser: Any, artifacts: Path) -> None:
    port = free_port()
    demo = spawn("demo", "--port", str(port), "--interval", "0.2")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        assert demo.stdout is not None
        while "open http" not in (line := demo.stdout.readline()):
            assert line, demo.stderr.read() if demo.stderr else ""
        page.goto(f"http://127.0.0.1:{port}/_ssehub/")
        _shows(page, "#status", "live")
        page.fill("#pub-topic", "from-the-form")
        page.fill("#pub-data", "typed by hand")
        page.click("#publish-form button")
        page.wait_for_function("() => document.querySelector('#pub-result').textContent !== ''")
        result = page.text_content("#pub-result")
        assert re.fullmatch(r"200: urn:uuid:[0-9a-f-]+", result), result
        page.wait_for_function(
            "() => document.querySelector('#tail').textContent.includes('typed by hand')"
        )
        page.screenshot(path=str(artifacts / "demo-publish-form.png"), full_page=True)
    finally:
        page.close()
        stop(demo)

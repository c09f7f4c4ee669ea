"""The README's examples run as written (with a free port and a bounded loop)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support.helpers import free_port

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def block(lang: str, containing: str) -> str:
    for match in re.finditer(rf"```{lang}\n(.*?)```", README, re.DOTALL):
        if containing in match.group(1):
            return match.group(1)
    raise AssertionError(f"no ```{lang} block with {containing!r} in README.md")


def test_asyncio_example_prints_the_event() -> None:
    code = block("python", "async with Hub() as hub")
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert result.stdout == 'created {"id": 7}\n'


@pytest.mark.browser
def test_quickstart_app_and_page_work_together(browser: Any, tmp_path: Path) -> None:
    app = block("python", "BackgroundHub(port=8000")
    html = block("html", "new EventSource")
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text(html)
    port = free_port()
    app = app.replace("port=8000", f"port={port}").replace("while True:", "for _ in range(30):")
    assert f"port={port}" in app
    assert "for _ in range(30):" in app
    proc = subprocess.Popen(
        [sys.executable, "-c", app],
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stderr=subprocess.PIPE,
    )
    page = browser.new_page()
    try:
        for _ in range(100):
            try:
                page.goto(f"http://127.0.0.1:{port}/")
                break
            except Exception:
                threading.Event().wait(0.1)
        page.wait_for_function(
            "() => /^\\d\\d:\\d\\d:\\d\\d$/.test(document.querySelector('#now').textContent)",
            timeout=10_000,
        )
        first = page.text_content("#now")
        page.wait_for_function(
            "(prev) => document.querySelector('#now').textContent !== prev",
            arg=first,
            timeout=5_000,
        )
    finally:
        page.close()
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert b"Traceback" not in err, err.decode()


def test_fastapi_example_runs_under_uvicorn(tmp_path: Path) -> None:
    import httpx

    from tests.support.asgi import Served, take

    (tmp_path / "readme_app.py").write_text(block("python", "from fastapi import FastAPI"))
    served = Served("uvicorn", "--app-dir", str(tmp_path), app="readme_app:app")
    try:
        sent = httpx.post(f"{served.url}/notify", params={"text": "hi"}).json()["id"]
        [note] = take(f"{served.url}/events/?topic=notes", 1, last_event_id="earliest")
        assert (note.id, note.data) == (sent, "hi")
        tokens = take(f"{served.url}/generate?prompt=one+two", 2)
        assert [(t.event, t.data) for t in tokens] == [("token", "one"), ("token", "two")]
    finally:
        served.stop()

"""The built-in pages (the live page, the dashboard) name their icon, which
the hub serves under `/_ssehub/`: Chromium asks for no `/favicon.ico` (a
404 in the console, or a `static_dir`'s own icon), and the icon is an icon."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from ssehub import BackgroundHub


@pytest.mark.browser
@pytest.mark.parametrize("path", ["/", "/_ssehub/"])
def test_the_built_in_pages_load_without_a_console_error(browser: Any, path: str) -> None:
    with BackgroundHub(port=0, page=True, dashboard=True) as hub:
        context = browser.new_context()  # its own favicon cache
        try:
            page = context.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(hub.url + path)
            page.wait_for_load_state("load")
            page.wait_for_timeout(1000)  # the icon is fetched after the load
            icon = page.evaluate("document.querySelector('link[rel=icon]')?.href")
        finally:
            context.close()
        assert errors == []
        assert icon == f"{hub.url}/_ssehub/favicon.ico"
        answer = httpx.get(icon, timeout=10)
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "image/vnd.microsoft.icon"
        assert answer.content[:4] == b"\x00\x00\x01\x00"  # an ICO file


def test_a_static_dir_keeps_its_own_favicon(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><title>mine</title>")
    (tmp_path / "favicon.ico").write_bytes(b"my icon")
    with BackgroundHub(port=0, page=tmp_path, dashboard=True) as hub:
        assert httpx.get(f"{hub.url}/favicon.ico", timeout=10).content == b"my icon"
        ours = httpx.get(f"{hub.url}/_ssehub/favicon.ico", timeout=10)
        assert (ours.status_code, ours.content[:4]) == (200, b"\x00\x00\x01\x00")

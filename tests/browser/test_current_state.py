"""A page opened after the last publish shows the current state at once
(issue 13 item 1): the README quickstart page (`newest=1`), in real
Chromium, against a hub that published once and then nothing. (The built-in
page opens with `newest=1`, or `newest=200` for its feed:
`test_live_page_newest.py`.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from ssehub import BackgroundHub

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def quickstart_page() -> str:
    for match in re.finditer(r"```html\n(.*?)```", README, re.DOTALL):
        if "new EventSource" in match.group(1):
            return match.group(1)
    raise AssertionError("no quickstart page in README.md")


@pytest.mark.browser
def test_the_quickstart_page_opens_with_the_current_value(browser: Any, tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text(quickstart_page())
    with BackgroundHub(port=0, page=tmp_path) as hub:
        hub.publish("clock", "12:34:56")  # once, long before the page opens
        page = browser.new_page()
        try:
            page.goto(f"{hub.url}/")
            page.wait_for_function(
                "() => document.querySelector('#now').textContent === '12:34:56'", timeout=1_000
            )
        finally:
            page.close()

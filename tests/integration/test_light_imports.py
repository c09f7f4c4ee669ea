"""Light imports (issue 10, item 5): the codec and the client do not load the
hub, the server, httptools, uvloop or sqlite3; the top-level names load on
first use. Each check runs in a fresh interpreter, so nothing this test run
imported earlier can hide a heavy import."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

HEAVY = ("ssehub.server", "ssehub.hub", "httptools", "uvloop", "sqlite3", "redis")


def loaded_after(code: str) -> set[str]:
    """The modules of `HEAVY` loaded once `code` has run in a new interpreter."""
    probe = (
        f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize(
    "code",
    [
        "import ssehub; from ssehub import Event, EventStreamParser, encode_event",
        "import ssehub.protocol",
        "import ssehub.client",
    ],
)
def test_codec_and_client_load_no_hub_server_or_storage(code: str) -> None:
    assert loaded_after(code) == set()


def test_backends_load_sqlite_and_redis_only_when_named() -> None:
    assert loaded_after("from ssehub.backends import MemoryBackend, HistoryLimits") == set()
    assert loaded_after("from ssehub.backends import SQLiteBackend") == {"sqlite3"}


def test_top_level_names_still_import() -> None:
    from ssehub import BackgroundHub, Hub
    from ssehub.hub import Hub as HubItself
    from ssehub.server import BackgroundHub as BackgroundHubItself

    assert (BackgroundHub, Hub) == (BackgroundHubItself, HubItself)


def test_an_unknown_top_level_name_is_an_attribute_error() -> None:
    import ssehub
    import ssehub.backends

    with pytest.raises(AttributeError, match="'ssehub' has no attribute 'Nope'"):
        ssehub.Nope  # noqa: B018
    with pytest.raises(AttributeError, match=r"'ssehub\.backends' has no attribute 'Nope'"):
        ssehub.backends.Nope  # noqa: B018
    with pytest.raises(ImportError, match="Nope"):
        from ssehub import Nope  # noqa: F401


LAZY = ["ssehub", "ssehub.backends"]  # modules that load some of their names on first use


def _fresh_names(name: str) -> tuple[set[str], set[str]]:
    """In a new interpreter, just after `import name`: what `dir()` lists and
    what the module holds already (the rest of `__all__` loads on first use)."""
    code = (
        f"import importlib, json; m = importlib.import_module({name!r})\n"
        "print(json.dumps([dir(m), list(vars(m))]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    listed, held = json.loads(done.stdout)
    return set(listed), set(held)


@pytest.mark.parametrize("name", LAZY)
def test_lazy_names_are_listed_and_load_the_real_object(name: str) -> None:
    listed, held = _fresh_names(name)
    module = importlib.import_module(name)
    assert set(module.__all__) <= listed, "dir() must list every exported name"
    assert set(module.__all__) - held, f"{name} loads nothing lazily: drop it from LAZY"
    for member in set(module.__all__) - held:
        value = getattr(module, member)
        home = importlib.import_module(value.__module__)
        assert getattr(home, member) is value, f"{name}.{member} is not {value.__module__}'s"
        assert member in dir(module)

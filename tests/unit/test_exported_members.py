"""`__all__` is honest: every public module exports exactly what it defines
for users, lazily loaded names included. (The layers: test_layers.py.)"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys

import pytest

PUBLIC = [
    "ssehub",
    "ssehub.protocol",
    "ssehub.backends",
    "ssehub.hub",
    "ssehub.server",
    "ssehub.testing",
    "ssehub.cli",
    "ssehub.client",
    "ssehub.asgi",
    "ssehub.asgi.starlette",
]


@pytest.mark.parametrize("name", PUBLIC)
def test_all_is_a_tuple_of_real_public_names(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert isinstance(exported, tuple)
    assert len(set(exported)) == len(exported)
    for member in exported:
        assert hasattr(module, member), f"{name}.{member} in __all__ but missing"
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_")
        and getattr(v, "__module__", "").startswith(name)
        and not isinstance(v, type(ast))
    }
    assert public <= set(exported), f"{name} defines public names not in __all__"


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


def test_top_level_names_are_their_layers_own() -> None:
    """Each name `ssehub` exports is the very object its layer exports."""
    import ssehub

    for member in ssehub.__all__:
        homes = [
            m
            for m in PUBLIC[1:]
            if member in importlib.import_module(m).__all__
            and getattr(importlib.import_module(m), member) is getattr(ssehub, member)
        ]
        assert homes, f"ssehub.{member} is exported by no layer"

"""`__all__` is honest: every public module exports exactly what it defines
for users, lazily loaded names included (their loading, in a fresh
interpreter: integration/test_light_imports.py). The layers: test_layers.py."""

from __future__ import annotations

import ast
import importlib

import pytest

PUBLIC = [
    "ssehub",
    "ssehub.protocol",
    "ssehub.backends",
    "ssehub.hub",
    "ssehub.mercure",
    "ssehub.hooks",
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


@pytest.mark.parametrize("name", PUBLIC)
def test_dir_lists_every_exported_name(name: str) -> None:
    """Lazily loaded names too (a module `__dir__`), for completion and help()."""
    module = importlib.import_module(name)
    assert set(module.__all__) <= set(dir(module))


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

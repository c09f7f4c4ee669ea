"""The layers (docs/architecture.md, "Layers"), checked on the source: every
module under `src/ssehub` is parsed with `ast` and its imports resolved —
absolute and relative, at the top, inside functions and under
`TYPE_CHECKING` alike (a type-only import is still a dependency a reader must
follow, so it counts for circles too).

    cli ──► server ──┐
            asgi ────┴──► (hooks ──►) mercure ──► hub ──► backends ──► protocol
      └──► client ─────────────────────────────────────► protocol
    testing ──► hub, backends, protocol    (library code never imports testing)
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "ssehub"

# What each layer may import besides itself (an arrow of the diagram, followed
# down); the standard library is always fine, third-party code is checked below.
BELOW_MERCURE = {"mercure", "hub", "backends", "protocol"}
ALLOWED: dict[str, set[str]] = {
    "protocol": set(),
    "backends": {"protocol"},
    "hub": {"backends", "protocol"},
    "mercure": {"hub", "backends", "protocol"},
    "hooks": BELOW_MERCURE,  # outbound HTTP to the app (auth callback, webhooks)
    "server": {"hooks", *BELOW_MERCURE},
    "asgi": {"hooks", *BELOW_MERCURE},
    "client": {"protocol"},
    "cli": {"server", "client", "hooks", *BELOW_MERCURE, PACKAGE},  # PACKAGE: `__version__`
    "testing": {"hub", "backends", "protocol"},
    PACKAGE: {"server", "asgi", "client", *BELOW_MERCURE},  # the top-level names
    "__main__": {"cli"},
}
# Not even the standard library's I/O: the codec is sans-IO (docs/architecture.md).
PROTOCOL_FORBIDDEN = {
    "asyncio", "concurrent", "selectors", "socket", "ssl", "subprocess", "threading", "time",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (a module of ours, or a top-level name otherwise)
    line: int
    type_only: bool


def module_name(path: Path, root: Path = SRC) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path = SRC) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted((root / PACKAGE).rglob("*.py"))}


def _type_checking_lines(tree: ast.Module) -> set[int]:
    """Lines inside `if TYPE_CHECKING:` blocks."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                for inner in ast.walk(child):
                    if hasattr(inner, "lineno"):
                        lines.add(inner.lineno)
    return lines


def imports(name: str, path: Path, known: set[str]) -> Iterator[Import]:
    """Every import in the module `name`, resolved: `from .x import y` names
    the module `x` of this package, or its submodule `x.y` when there is one."""
    tree = ast.parse(path.read_text(), str(path))
    type_only = _type_checking_lines(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def resolve(dotted: str) -> str:
        """The longest prefix of `dotted` that is a module of ours, else its top name."""
        parts = dotted.split(".")
        for end in range(len(parts), 0, -1):
            if ".".join(parts[:end]) in known:
                return ".".join(parts[:end])
        return parts[0]

    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        found: list[str] = []
        if isinstance(node, ast.Import):
            found = [resolve(alias.name) for alias in node.names]
        else:
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - node.level + 1]
                base = ".".join(filter(None, [*base_parts, node.module or ""]))
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append(sub if sub in known else resolve(base))
        for target in found:
            if target != name:
                yield Import(name, target, node.lineno, node.lineno in type_only)


def graph(root: Path = SRC) -> dict[str, list[Import]]:
    found = modules(root)
    known = set(found)
    return {name: list(imports(name, path, known)) for name, path in found.items()}


def cycles(edges: dict[str, list[Import]]) -> list[list[Import]]:
    """One import circle per strongly connected group of modules (Tarjan),
    each as the chain of imports that closes it."""
    ours = {m: sorted({i.target for i in out if i.target in edges}) for m, out in edges.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(module: str) -> None:  # recursion is fine: the graph is a few dozen modules
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in ours[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(ours):
        if module not in index:
            visit(module)
    return [_circle(edges, set(group)) for group in groups]


def _circle(edges: dict[str, list[Import]], group: set[str]) -> list[Import]:
    """A shortest chain of imports from the group's first module back to itself."""
    start = min(group)
    paths: dict[str, list[Import]] = {start: []}
    queue = [start]
    while queue:
        module = queue.pop(0)
        for edge in edges[module]:
            if edge.target == start:
                return [*paths[module], edge]
            if edge.target in group and edge.target not in paths:
                paths[edge.target] = [*paths[module], edge]
                queue.append(edge.target)
    raise AssertionError(f"no circle through {start}")  # pragma: no cover - Tarjan found one


def describe(circle: list[Import]) -> str:
    steps = [
        f"{i.source} (line {i.line}{', TYPE_CHECKING' if i.type_only else ''})" for i in circle
    ]
    return " -> ".join([*steps, circle[0].source])


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else PACKAGE


EDGES = graph()


def test_the_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The resolver itself, on a small package of its own."""
    pkg = tmp_path / PACKAGE
    (pkg / "hub").mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .hub import Hub\n"
    )
    (pkg / "hub" / "__init__.py").write_text("from ._hub import Hub\nfrom . import _sub\n")
    (pkg / "hub" / "_hub.py").write_text("def f():\n    from ._sub import S\nimport json\n")
    (pkg / "hub" / "_sub.py").write_text("import ssehub.hub._hub\nfrom .. import __version__\n")
    edges = graph(tmp_path)
    assert {(i.source, i.target, i.type_only) for out in edges.values() for i in out} == {
        ("ssehub", "typing", False),
        ("ssehub", "ssehub.hub", True),
        ("ssehub.hub", "ssehub.hub._hub", False),
        ("ssehub.hub", "ssehub.hub._sub", False),
        ("ssehub.hub._hub", "ssehub.hub._sub", False),
        ("ssehub.hub._hub", "json", False),
        ("ssehub.hub._sub", "ssehub.hub._hub", False),
        ("ssehub.hub._sub", "ssehub", False),
    }
    (circle,) = cycles(edges)
    assert describe(circle) == (
        "ssehub (line 3, TYPE_CHECKING) -> ssehub.hub (line 2) -> ssehub.hub._sub (line 2)"
        " -> ssehub"
    )


def test_no_import_circles() -> None:
    found = [describe(c) for c in cycles(EDGES)]
    assert not found, "import circles:\n" + "\n".join(found)


@pytest.mark.parametrize("module", sorted(EDGES))
def test_layers_import_only_downwards(module: str) -> None:
    own = layer(module)
    assert own in ALLOWED, f"{module}: a new layer? add it to docs/architecture.md and to ALLOWED"
    wrong = [
        f"{module} imports {i.target} (line {i.line}): {own} may import only"
        f" {sorted(ALLOWED[own]) or 'the standard library'}"
        for i in EDGES[module]
        if i.target.startswith(PACKAGE)
        and layer(i.target) != own
        and layer(i.target) not in ALLOWED[own]
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("module", sorted(m for m in EDGES if layer(m) == "protocol"))
def test_protocol_is_standard_library_and_sans_io(module: str) -> None:
    outside = {
        i.target
        for i in EDGES[module]
        if not i.target.startswith(PACKAGE)
        and (i.target not in sys.stdlib_module_names or i.target in PROTOCOL_FORBIDDEN)
    }
    assert not outside, f"{module} imports {sorted(outside)}"


@pytest.mark.parametrize("module", sorted(m for m in EDGES if layer(m) == "asgi"))
def test_asgi_imports_no_framework(module: str) -> None:
    if module == "ssehub.asgi.starlette":
        return  # the one adapter, for FastAPI's isinstance(Response) check
    frameworks = {"starlette", "fastapi", "uvicorn", "hypercorn", "granian", "anyio"}
    assert not {i.target for i in EDGES[module]} & frameworks


def test_no_test_module_imports_another() -> None:
    """What tests share lives in `tests/support`: a test module importing
    another drags in its fixtures and its collection."""
    tests = SRC.parent / "tests"
    offenders = []
    for path in sorted(tests.rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] if node.level == 0 else [f".{node.module}"]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.rsplit(".", 1)[-1].startswith("test_"):
                    offenders.append(f"{path.relative_to(tests)} imports {name}")
    assert offenders == []

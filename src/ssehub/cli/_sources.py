"""`serve`'s defaults from a TOML file and `SSEHUB_*` variables, so that
flags still win: flags > environment > file > built-in defaults."""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Mapping

from ._options import Parser, UsageError
from ._topics import topic_policies

__all__ = ("set_defaults",)

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
PREFIX = "SSEHUB_"


def set_defaults(serve: argparse.ArgumentParser, argv: list[str], env: Mapping[str, str]) -> None:
    pre = Parser(prog=serve.prog, add_help=False)
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(argv)
    path = known.config or env.get(PREFIX + "CONFIG")
    # (where a value came from, its option name, the value)
    values: list[tuple[str, str, object]] = []
    if path:
        try:
            with open(path, "rb") as file:
                table = tomllib.load(file)
        except tomllib.TOMLDecodeError as error:
            raise UsageError(f"{path}: not valid TOML: {error}") from None
        except OSError as error:
            raise UsageError(f"--config: cannot read {path}: {error.strerror}") from None
        if "topics" in table:  # [[topics]] tables: per-topic policies
            serve.set_defaults(topic_policies=topic_policies(table.pop("topics"), path))
        values += [(f"{path}: {k}", k.replace("-", "_"), v) for k, v in table.items()]
    values += [
        (f"environment {k}", k[len(PREFIX) :].lower(), v)
        for k, v in env.items()
        if k.startswith(PREFIX)
    ]
    actions = {a.dest: a for a in serve._actions if a.dest not in ("help", "config")}
    defaults: dict[str, object] = {}
    for where, name, raw in values:
        action = actions.get(name)
        if action is None:
            if not where.startswith("environment"):
                raise UsageError(f"{path}: unknown option {name.replace('_', '-')!r}")
            continue
        defaults[name] = _value(action, raw, where)
    serve.set_defaults(**defaults)


def _value(action: argparse.Action, raw: object, where: str) -> object:
    if action.nargs == 0 and action.const is True:  # a --flag
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise UsageError(f"{where}: expected true or false, not {raw!r}")
    if isinstance(action, argparse._AppendAction):
        items = raw if isinstance(raw, list) else [s for s in str(raw).split(",") if s.strip()]
        return [str(item).strip() for item in items]
    convert = action.type if callable(action.type) else str
    try:
        value = convert(raw if isinstance(raw, str) else str(raw))
    except (TypeError, ValueError, argparse.ArgumentTypeError) as error:
        raise UsageError(f"{where}: {error or 'invalid value'}") from None
    if action.choices is not None and value not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise UsageError(f"{where}: {value!r} is not one of {choices}")
    return value

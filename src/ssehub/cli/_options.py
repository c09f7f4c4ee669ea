"""What every command shares: the parser (errors in flag names), value
types, defaults read from the config classes, and the token options."""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from ssehub.backends import HistoryLimits
from ssehub.hooks import WebhookConfig
from ssehub.hub import HubConfig
from ssehub.mercure import AuthorizeConfig, JWTAuth, MercureConfig
from ssehub.server import ServerConfig

__all__ = (
    "CONFIG_FLAGS",
    "Parser",
    "UsageError",
    "add_option",
    "add_token_options",
    "algorithm",
    "config_default",
    "flag_names",
    "integer",
    "key",
    "number",
    "read_key",
)


class UsageError(Exception):
    """Bad arguments: the message is one line in the user's terms (flag
    names), and the command exits 2."""


class Parser(argparse.ArgumentParser):
    """An `ArgumentParser` whose errors are one line naming the flag (a bad
    value) or the usage line and the reason (anything else), exit 2. Flags
    are never abbreviated: `--reuse` is not `--reuse-port`, and a script's
    `--dash` does not break when another `--dash...` option appears."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        value = re.fullmatch(r"argument ([^:]+): (.*)", message, flags=re.DOTALL)
        if value is not None and value.group(1) == "COMMAND":
            self.fail(_unknown_command(value.group(2)), usage=True)
        if value is not None:
            self.fail(f"{value.group(1)}: {value.group(2)}")
        self.fail(message, usage=True)

    def fail(self, message: str, *, usage: bool = False) -> NoReturn:
        if usage:
            self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: {message}\n")

    def unknown(self, extras: list[str]) -> NoReturn:
        """What `parse_known_args` left over: the first unknown option, with
        the nearest known one, or the first unexpected argument."""
        options = [a for a in extras if a.startswith("-") and a != "-"]
        if not options:
            self.fail(f"unexpected argument {extras[0]!r}", usage=True)
        flag = options[0].partition("=")[0]
        known = [
            s
            for a in self._actions
            if a.help != argparse.SUPPRESS
            for s in a.option_strings
            if s.startswith("--")
        ]
        near = difflib.get_close_matches(flag, known, n=1, cutoff=0.6)
        hint = f" (did you mean {near[0]}?)" if near else f" ({self.prog} --help lists them)"
        self.fail(f"unknown option {flag}{hint}", usage=True)


def _unknown_command(reason: str) -> str:
    found = re.match(r"invalid choice: '([^']*)' \(choose from (.*)\)", reason)
    if found is None:
        return reason
    names = re.findall(r"'([^']*)'", found.group(2))
    near = difflib.get_close_matches(found.group(1), names, n=1)
    hint = f" (did you mean {near[0]}?)" if near else f" (one of {', '.join(names)})"
    return f"unknown command {found.group(1)!r}{hint}"


# -- value types: a bad value names what was expected ---------------------------


def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, not {text!r}") from None


def number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
    if value != value:  # NaN passes every comparison the configs make
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}")
    return value


def key(text: str) -> str:
    """A key or token: text, or @FILE; never empty (an empty key would turn
    checking off or sign with nothing)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty (give a key, or leave the option out)")
    if text.startswith("@") and not text[1:]:
        raise argparse.ArgumentTypeError("'@' names no file: use @PATH")
    return text


def algorithm(text: str) -> str:
    """A JWT signature algorithm, checked as `JWTAuth` checks it."""
    try:
        JWTAuth(algorithm=text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("JWT algorithm ")) from None
    return text


def read_key(value: str | None, flag: str = "--jwt-key") -> str | None:
    """A key given as text, or as @path to a file holding it (PEM keys)."""
    if value is None or not value.startswith("@"):
        return value
    try:
        text = Path(value[1:]).read_text()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not text"
        raise UsageError(f"{flag}: cannot read {value[1:]}: {reason}") from None
    if not text.strip():
        raise UsageError(f"{flag}: the file {value[1:]} is empty")
    return text


# -- defaults and config errors, in flag names -----------------------------------

CONFIG_FLAGS: dict[type, dict[str, str]] = {
    ServerConfig: {
        "host": "--host",
        "port": "--port",
        "static_dir": "--page",
        "reuse_port": "--reuse-port",
        "dashboard": "--dashboard",
        "dashboard_token": "--dashboard-token",
        "max_body_bytes": "--max-body-bytes",
        "max_connections": "--max-connections",
        "idle_timeout": "--idle-timeout",
        "head_timeout": "--head-timeout",
        "body_timeout": "--body-timeout",
        "max_header_fields": "--max-header-fields",
        "certfile": "--cert",
        "keyfile": "--key",
    },
    MercureConfig: {
        "anonymous_publish": "--anonymous-publish",
        "cors_origins": "--cors-origin",
        "anonymous": "--anonymous",
        "publish_origins": "--publish-origin",
        "subscriptions": "--subscriptions",
        "max_topics": "--max-topics",
        "max_stream_seconds": "--max-stream-seconds",
        "dialects": "--mercure-dialect",
        "resource": "--resource",
        "issuers": "--jwt-issuer",
        "issuer_keys": "--jwt-issuer-key",
    },
    JWTAuth: {
        "publisher_key": "--publisher-jwt-key",
        "subscriber_key": "--subscriber-jwt-key",
        "algorithm": "--jwt-algorithm",
        "leeway": "--jwt-leeway",
    },
    # the app's hooks (auth callback, webhooks)
    AuthorizeConfig: {
        "url": "--authorize-url",
        "forward": "--authorize-forward",
        "timeout": "--authorize-timeout",
        "cache_seconds": "--authorize-cache-seconds",
        "cache_size": "--authorize-cache-size",
    },
    WebhookConfig: {
        "urls": "--webhook-url",
        "secret": "--webhook-secret",
        "max_pending": "--webhook-queue",
        "attempts": "--webhook-attempts",
        "backoff": "--webhook-backoff",
        "timeout": "--webhook-timeout",
    },
    HubConfig: {"heartbeat": "--heartbeat", "presence_interval": "--presence-interval"},
    HistoryLimits: {"max_events": "--history-events", "max_age": "--history-age"},
}
"""Which flag sets which config field: the defaults shown in `--help` are
read through it, and config errors are translated with it."""


def config_default(cls: type, name: str) -> Any:
    """The default of the config class `cls`'s field `name`."""
    for field in dataclasses.fields(cls):
        if field.name == name:
            if field.default is not dataclasses.MISSING:
                return field.default
            if field.default_factory is not dataclasses.MISSING:
                return field.default_factory()
            break
    raise LookupError(f"{cls.__name__}.{name} has no default")


@contextmanager
def flag_names() -> Iterator[None]:
    """Turn a config class's `ValueError` into a `UsageError` naming the
    flags: `ServerConfig.idle_timeout must be > 0` -> `--idle-timeout must
    be > 0`; `ServerConfig needs both certfile and keyfile` -> `needs both
    --cert and --key`."""
    try:
        yield
    except ValueError as error:
        raise UsageError(translate(str(error))) from None


def translate(message: str) -> str:
    for cls, flags in CONFIG_FLAGS.items():
        name = cls.__name__
        if not message.startswith(name):
            continue
        for field, flag in flags.items():
            message = re.sub(rf"\b{name}\.{field}\b", flag, message)
        message = re.sub(rf"^{name}:? ", "", message)
        # a field named bare (only before the value, which may be any text)
        head, sep, tail = message.partition(": ")
        for field, flag in flags.items():
            if field != flag.removeprefix("--").replace("-", "_"):
                head = re.sub(rf"(?<![-\w]){field}\b", flag, head)
        return head + sep + tail
    return message


# -- help texts that say the default once ----------------------------------------


def _shown(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def add_option(
    parser: argparse._ActionsContainer, *flags: str, help: str, **kwargs: Any
) -> argparse.Action:
    """`add_argument`, with ` (default: X)` after the help once, when there is
    a default worth saying (not None, False or an empty list)."""
    default = kwargs.get("default")
    text = help
    if default not in (None, False, [], ()) and kwargs.get("action") != "store_true":
        text = f"{help} (default: {_shown(default)})"
    return parser.add_argument(*flags, help=text.replace("%", "%%"), **kwargs)


TOKEN_HELP = "send 'Authorization: Bearer JWT' (from `ssehub token`; @FILE reads it from FILE)"
JWT_KEY_HELP = (
    "mint a short-lived JWT signed with KEY (HMAC secret or PEM private key; @FILE reads it "
    "from FILE) allowing just what this command does with its topics: publish to them, or "
    "receive their private updates; fresh for each request"
)


def add_token_options(parser: argparse.ArgumentParser) -> None:
    """`--token JWT`, `--jwt-key KEY` and `--jwt-algorithm`, the same on
    every command that talks to a hub."""
    group = parser.add_argument_group("credentials")
    either = group.add_mutually_exclusive_group()
    either.add_argument("--token", metavar="JWT", type=key, help=TOKEN_HELP.replace("%", "%%"))
    either.add_argument("--jwt-key", metavar="KEY", type=key, help=JWT_KEY_HELP)
    add_option(
        group,
        "--jwt-algorithm",
        metavar="ALG",
        type=algorithm,
        default=config_default(JWTAuth, "algorithm"),
        help="with --jwt-key: the signature algorithm",
    )
    group.add_argument(
        "--jwt-issuer",
        metavar="ISSUER",
        help="with --jwt-key: mint Mercure 1.0 access tokens (typ at+jwt) whose iss is ISSUER "
        "(one of the hub's --jwt-issuer or --jwt-issuer-key), not 0.x JWTs",
    )
    group.add_argument(
        "--resource",
        metavar="URL",
        help="with --jwt-issuer: the tokens' aud, the hub's --resource (default: the hub's "
        "/.well-known/mercure URL)",
    )

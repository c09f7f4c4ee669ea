"""The `ssehub` command: argument parsing and exit codes only.

One module per command (`_serve`, `_demo`, `_publish`, `_listen`, `_pipe`,
`_token`), each with `add_parser(commands)` and `run(args) -> int`; what
they share is in `_options` (errors in flag names, defaults read from the
config classes, the token options), `_jwt` and `_http` (the one publisher).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from .. import __version__  # noqa: TID252 (the package's own version, not a layer)
from . import _demo, _listen, _options, _pipe, _publish, _serve, _sources, _token

__all__ = ("main",)


def _parsers() -> tuple[_options.Parser, dict[str, _options.Parser]]:
    parser = _options.Parser(prog="ssehub", description="Server-Sent Events hub and toolkit.")
    parser.add_argument("--version", action="version", version=f"ssehub {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    subparsers = {}
    for module in (_demo, _serve, _listen, _pipe, _token, _publish):
        sub = module.add_parser(commands)
        assert isinstance(sub, _options.Parser)
        subparsers[sub.prog.split()[-1]] = sub
    return parser, subparsers


def main(argv: Sequence[str] | None = None) -> int:
    """Run `ssehub ARGV`; the exit code: 0 done, 1 failed, 2 bad arguments,
    130 interrupted."""
    parser, commands = _parsers()
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv else None
    prog = commands[command].prog if command in commands else parser.prog
    try:
        if command == "serve":
            _sources.set_defaults(commands["serve"], argv[1:], os.environ)
        args, extras = parser.parse_known_args(argv)
        if extras:
            commands[args.command].unknown(extras)
        code: int = args.run(args)
        return code
    except KeyboardInterrupt:
        return 130
    except _options.UsageError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    except (ValueError, OSError, ImportError) as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2

"""The ``ocsnet`` command.

The last stage of the pipeline: nothing in the library imports it.  Each
sub-command lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a
function ``run(args) -> int``.  Library errors (:class:`ocsnet.errors.OcsnetError`)
become one line on stderr and exit status 2; no traceback reaches the user
for bad input.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import OcsnetError

# Sub-command modules, in the order `ocsnet --help` lists them.
COMMANDS = ("topo", "traffic", "flow", "schedule", "serve", "compare", "validate", "sweep", "catalog", "faults", "silicon")

_PATH_HELP = ("a user folder (catalog/, topologies/, schedules/, studies/) searched after the built-in data "
              "and OCSNET_PATH; repeat for several")
_paths: list[str] = []


class _PathAction(argparse.Action):
    """``--path DIR`` at any level of the command line; every occurrence is kept, in order."""

    def __call__(self, parser, namespace, values, option_string=None):
        _paths.append(values)


def _add_path_option(parser: argparse.ArgumentParser) -> None:
    """Give ``parser`` and every sub-command parser under it the ``--path DIR`` option."""
    parser.add_argument("--path", action=_PathAction, metavar="DIR", default=argparse.SUPPRESS, help=_PATH_HELP)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                _add_path_option(sub)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit status 2."""

    def error(self, message):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ocsnet", description=__doc__.splitlines()[0] + " Networks for Lite-GPU AI clusters.")
    parser.add_argument("--version", action="version", version=f"ocsnet {__import__('ocsnet').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"{__name__}.{name}":
                continue  # sub-command not built yet
            raise
        mod.register(sub)
    _add_path_option(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .. import folders

    parser = build_parser()
    _paths.clear()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    added = []
    try:
        added = [folders.add_path(p, "--path") for p in _paths]
        return int(args.func(args) or 0)
    except OcsnetError as e:
        print(f"ocsnet {args.command}: error: {e}", file=sys.stderr)
        return 2
    except FileNotFoundError as e:
        print(f"ocsnet {args.command}: error: no such file: {e.filename}", file=sys.stderr)
        return 2
    except (IsADirectoryError, NotADirectoryError, PermissionError) as e:
        print(f"ocsnet {args.command}: error: {e.filename}: {e.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader (e.g. `head`) went away: stop quietly, as Unix tools do
        import os
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    finally:
        for p in added:
            folders.remove_path(p)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

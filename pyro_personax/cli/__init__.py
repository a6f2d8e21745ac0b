"""The ``personax`` command line.

Each subcommand lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable
``run(args) -> int``. Errors on bad input are printed as one line (no traceback
unless ``--debug``) and give a non-zero exit status.

Subcommand modules import their heavy dependencies inside ``run``, and
``personax COMMAND ...`` imports only the module of ``COMMAND``, so help and argument
errors come back without loading the numerical stack.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Iterable

from pyro_personax._version import __version__

__all__ = ["main", "build_parser"]

SUBCOMMANDS = ("demo", "simulate", "independence", "fit", "report", "sensitivity")
USER_ERRORS = (ValueError, TypeError, FileNotFoundError, FileExistsError, KeyError, RuntimeError)


def build_parser(commands: Iterable[str] = SUBCOMMANDS) -> argparse.ArgumentParser:
    """The ``personax`` argument parser with the available subcommands among ``commands`` (default: all)."""
    parser = argparse.ArgumentParser(
        prog="personax",
        description="PersonaX: Bayesian multimodal causal representation learning for "
        "LLM-inferred behaviour traits, faces and biographies.",
    )
    parser.add_argument("--version", action="version", version=f"personax {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in commands:
        try:
            module = importlib.import_module(f"pyro_personax.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"pyro_personax.cli.{name}":
                raise
            continue
        module.register(subparsers)
    return parser


def _requested_command(argv: list[str]) -> tuple[str, ...]:
    """The subcommand named in ``argv`` (the first argument not an option), or all of them."""
    first = next((a for a in argv if not a.startswith("-")), None)
    return (first,) if first in SUBCOMMANDS else SUBCOMMANDS


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``personax``; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_requested_command(argv))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as err:
        if args.debug:
            raise
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"personax {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

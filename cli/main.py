"""Entry point of the command line: `python main.py SUBCOMMAND ...`.

Each module in `cli/commands/` adds one subcommand through `add_parser(subparsers)`
and handles it in `run(args) -> int`. Every error the engine reports becomes one
line `error: ...` on stderr and exit status 2; `--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from engine.errors import WeightsmithError

from . import commands

EXIT_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line with exit status 2 like every other error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"error: {self.prog}: {message}\n")
        raise SystemExit(EXIT_ERROR)


def command_names() -> list[str]:
    """Names of the subcommands (one module each in cli/commands)."""
    return sorted(info.name for info in pkgutil.iter_modules(commands.__path__))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="weightsmith", description="Edit PyTorch models and checkpoints.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in command_names():
        module = importlib.import_module(f"{commands.__name__}.{name}")
        sub = module.add_parser(subparsers)
        sub.add_argument("--debug", action="store_true", help="show tracebacks of errors")
        sub.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return EXIT_ERROR
    # Seeds that recipes leave out are drawn from torch's global generator: seeding it
    # makes every command reproducible from run to run.
    import torch

    torch.manual_seed(0)
    try:
        return int(args.run(args) or 0)
    except WeightsmithError as error:
        if args.debug:
            raise
        sys.stderr.write(f"error: {error}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return 130
    except BrokenPipeError:
        # The reader went away (`inspect | head`): not an error of ours.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:
        if args.debug:
            raise
        first_line = str(error).splitlines()[0] if str(error) else ""
        sys.stderr.write(f"error: unexpected {type(error).__name__}: {first_line} "
                         "(run with --debug for details)\n")
        return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())

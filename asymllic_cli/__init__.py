"""The ``asymllic`` command line, the top layer (it uses ``space``, ``asymllic`` and ``search``; nothing imports
it): ``main(argv)`` dispatches to one small module per command group. Building the parser imports no torch,
Optuna, Ray or plotly: a command imports what it needs when it runs."""
from __future__ import annotations

import argparse
import sys

from . import coding, complexity, dashboard, design_space, evaluate, figure, publish, reproduce, studies, train

GROUPS = (coding, complexity, design_space, figure, train, evaluate, studies, publish, dashboard, reproduce)


def setup_args() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asymllic", description="Decoder design-space explorer for asymmetric learned image compression.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = setup_args().parse_args(sys.argv[1:] if argv is None else argv)
    from asymllic.errors import AsymllicError
    from space import ConfigError

    try:
        return int(args.run(args) or 0)
    except (ConfigError, AsymllicError) as e:
        print(f"asymllic: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into a reader that stopped (`| head`): no traceback, nothing more
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as e:  # a full disk or a read-only folder (maybe behind a library's error): say where
        from asymllic.files import describe, is_resource_error

        if not is_resource_error(e):
            raise
        print(f"asymllic: error: {describe(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("asymllic: interrupted", file=sys.stderr)
        return 130

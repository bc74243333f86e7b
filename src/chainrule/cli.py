"""The ``chainrule`` command."""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="chainrule",
        description="chainrule: a symbolic graph-to-graph differentiation compiler. "
                    "The subcommands 'diff' and 'demo' are planned; today this "
                    "prints help.")
    parser.add_argument("--version", action="store_true", help="print the version")
    args = parser.parse_args(argv)
    if args.version:
        from . import __version__
        print(__version__)
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())

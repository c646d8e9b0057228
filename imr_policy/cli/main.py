"""`imr-policy`: one module per subcommand under imr_policy/cli/, each registering itself here.

Exit codes: 0 success, 1 invalid input, invalid rule files or a failed check (messages on stderr),
2 usage errors.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from imr_policy.evaluate import ENGINE_VERSION
from imr_policy.loading.limits import check_environment

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2

# Each module defines `register(subparsers) -> None`, which adds its parser and sets `func`
# (`func(args) -> int`). Adding a subcommand is adding a module and a name here.
COMMANDS = (
    "evaluate",
    "validate",
    "diff",
    "batch",
    "serve",
    "replay",
    "test",
    "lint",
    "explain",
    "verify",
    "letter",
    "show",
    "migrate",
    "diagnostic",
)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="imr-policy",
        description="Declarative medical-necessity policies for California UR/IMR (MTUS, ACOEM, ODG).",
    )
    root.add_argument("--version", action="version", version=f"imr-policy {ENGINE_VERSION}")
    sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"imr_policy.cli.cmd_{name}").register(sub)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if (bad := check_environment()) is not None:
        print(f"imr-policy: {bad} (docs/limits.md)", file=sys.stderr)
        return EXIT_USAGE
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:  # pragma: no cover
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

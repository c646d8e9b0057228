"""`imr-policy`: evaluate cases and validate rule files.

Exit codes: 0 success, 1 invalid input or invalid rule files (messages on stderr), 2 usage errors.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from imr_policy import load, parse_case_text
from imr_policy.cli import render
from imr_policy.errors import CaseError, EngineError, PolicyError
from imr_policy.evaluate import ENGINE_VERSION
from imr_policy.resources import policies_dir
from imr_policy.validate import load_editions

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imr-policy",
        description="Declarative medical-necessity policies for California UR/IMR (MTUS, ACOEM, ODG).",
    )
    parser.add_argument("--version", action="version", version=f"imr-policy {ENGINE_VERSION}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ev = sub.add_parser("evaluate", help="decide every request of a case")
    ev.add_argument("case", help="a case file (YAML or JSON), or - for standard input")
    ev.add_argument("--format", choices=("text", "json", "yaml"), default="text")
    ev.add_argument("--policies", type=Path, help="a directory of rule packs (default: the shipped packs)")
    ev.add_argument(
        "--engine",
        choices=("durable", "reference"),
        default="durable",
        help="durable_rules (default) or the pure-Python reference evaluator",
    )

    va = sub.add_parser("validate", help="check rule files and report every problem with file:line:col")
    va.add_argument("paths", nargs="*", type=Path, help="rule files or directories (default: the shipped packs)")
    va.add_argument("--format", choices=("text", "json"), default="text")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "evaluate":
            return _evaluate(args)
        return _validate(args)
    except KeyboardInterrupt:  # pragma: no cover
        return 130


def _read(path: str) -> tuple[str, str]:
    if path == "-":
        return sys.stdin.read(), "<stdin>"
    return Path(path).read_text(encoding="utf-8"), path


def _evaluate(args: argparse.Namespace) -> int:
    try:
        text, name = _read(args.case)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"imr-policy: cannot read `{args.case}`: {exc}", file=sys.stderr)
        return EXIT_INVALID
    try:
        engine = load(args.policies, engine=args.engine)
        case = parse_case_text(text, file=name)
        determination = engine.evaluate(case)
    except (CaseError, PolicyError) as exc:
        print(render.diagnostics_text(exc.diagnostics), file=sys.stderr)
        what = "case" if isinstance(exc, CaseError) else "rule files"
        print(
            f"imr-policy: the {what} are not valid; no determination was made".replace("case are", "case is"),
            file=sys.stderr,
        )
        return EXIT_INVALID
    except EngineError as exc:
        print(f"imr-policy: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if args.format == "json":
        sys.stdout.write(render.to_json(determination.to_dict()))
    elif args.format == "yaml":
        sys.stdout.write(render.to_yaml(determination.to_dict()))
    else:
        sys.stdout.write(render.determination_text(determination) + "\n")
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    paths = args.paths or [policies_dir()]
    missing = [p for p in paths if not p.exists()]
    if missing:
        print(f"imr-policy: no such file or directory: {', '.join(map(str, missing))}", file=sys.stderr)
        return EXIT_USAGE
    result = load_editions(list(paths), display_root=Path.cwd())
    if args.format == "json":
        sys.stdout.write(
            render.to_json(
                {
                    "ok": result.ok,
                    "files": list(result.files),
                    "diagnostics": [d.to_dict() for d in result.diagnostics],
                }
            )
        )
    else:
        if result.diagnostics:
            print(render.diagnostics_text(result.diagnostics), file=sys.stderr)
        print(render.summary(result.diagnostics, len(result.files)))
    return EXIT_OK if result.ok else EXIT_INVALID


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

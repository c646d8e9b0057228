"""Helpers shared by subcommands: reading inputs and reporting errors the same way everywhere."""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from imr_policy.cli import render
from imr_policy.evaluate import Engine, load
from imr_policy.loading.case import parse_case_text
from imr_policy.loading.limits import TooLarge, for_prefix, read_limited
from imr_policy.loading.resources import checkout_policies, policies_dir
from imr_policy.loading.validate import discover
from imr_policy.model.errors import CaseError, EngineError, PolicyError
from imr_policy.model.values import Case

GIVEN, WORKING_DIRECTORY, INSTALLED = "given", "working directory", "installed"


@dataclass(frozen=True, slots=True)
class PolicySource:
    """Which rule packs a verb reads: the paths given, else the checkout's `policies/` (the working
    directory or a parent), else the installed packs."""

    paths: tuple[Path, ...]
    origin: str  # GIVEN, WORKING_DIRECTORY or INSTALLED

    @property
    def path(self) -> Path | None:
        """The one path to pass to `imr_policy.load` (None when several were given)."""
        return self.paths[0] if len(self.paths) == 1 else None

    @property
    def load_path(self) -> Path | None:
        """What to pass to `imr_policy.load`: None for the installed packs (also when the checkout found is
        the one the package runs from, so its policy set keeps the id `imr-policy:builtin`)."""
        if self.origin != GIVEN and self.paths[0].resolve() == policies_dir().resolve():
            return None
        return self.path

    def shown(self) -> str:
        return ", ".join(_relative(p) for p in self.paths)

    def to_dict(self, content_hash: str) -> dict[str, object]:
        return {"paths": [_relative(p) for p in self.paths], "origin": self.origin, "content_hash": content_hash}


def policy_source(given: Sequence[Path] | Path | None) -> PolicySource:
    if isinstance(given, Path):
        given = [given]
    if given:
        return PolicySource(tuple(given), GIVEN)
    found = checkout_policies()
    if found is not None:
        return PolicySource((found,), WORKING_DIRECTORY)
    return PolicySource((policies_dir(),), INSTALLED)


def files_hash(paths: Sequence[Path]) -> str:
    """The content hash of the rule files under `paths`, as `imr_policy.load` computes it for a valid set
    (sha256 over the sorted sha256 of each file), also for a set that does not validate."""
    digest = hashlib.sha256()
    shas = []
    for file in discover(list(paths)):
        try:
            shas.append(hashlib.sha256(file.read_bytes()).hexdigest())
        except OSError:
            continue
    for sha in sorted(shas):
        digest.update(sha.encode())
    return "sha256:" + digest.hexdigest()


def announce(source: PolicySource, content_hash: str, stream: TextIO | None = None) -> None:
    """One line saying which policy set a verb read: its path, content hash and why it was chosen."""
    why = {
        GIVEN: "as given",
        WORKING_DIRECTORY: "the checkout's packs, found from the working directory",
        INSTALLED: "the installed packs: no policies/ directory in the working directory or its parents",
    }[source.origin]
    print(f"policy set: {source.shown()} ({content_hash}; {why})", file=stream or sys.stderr)


def _relative(path: Path) -> str:
    here = Path.cwd().resolve()
    try:
        inside = path.resolve().relative_to(here).as_posix() if here.parent != here else None
    except ValueError:
        inside = None
    return (inside or ".") if inside is not None else str(path.resolve())


def read_text(path: str) -> tuple[str, str]:
    """The text of `path` (`-` is standard input) and the name to show in messages, read within the case
    size limit (imr_policy/loading/limits.py: raises TooLarge past it, never reading a huge input whole)."""
    limit = for_prefix("case")
    if path == "-":
        return read_limited(sys.stdin.buffer, limit).decode("utf-8"), "<stdin>"
    return read_limited(path, limit).decode("utf-8"), path


def report_invalid(exc: CaseError | PolicyError) -> None:
    print(render.diagnostics_text(exc.diagnostics), file=sys.stderr)
    what = "the case is" if isinstance(exc, CaseError) else "the rule files are"
    print(f"imr-policy: {what} not valid; no determination was made", file=sys.stderr)


def add_engine_options(p: argparse.ArgumentParser) -> None:
    """`--policies DIR` and `--engine`, as every verb that evaluates a case takes them (`engine_and_case`)."""
    p.add_argument(
        "--policies",
        type=Path,
        help="a directory of rule packs (default: the checkout's policies/, else the installed packs)",
    )
    p.add_argument(
        "--engine",
        choices=("durable", "reference"),
        default="durable",
        help="durable_rules (default) or the pure-Python reference evaluator",
    )


def engine_and_case(args: argparse.Namespace) -> tuple[Engine, Case] | int:
    """The engine (`--policies`, `--engine`) and the validated case (`args.case`) a subcommand works on,
    or the exit code after reporting why there is none (1: unreadable or invalid input)."""
    try:
        text, name = read_text(args.case)
    except TooLarge as exc:
        report_invalid(CaseError("the case is not valid", [exc.refusal(prefix="case", file=args.case)]))
        return 1
    except (OSError, UnicodeDecodeError) as exc:
        print(f"imr-policy: cannot read `{args.case}`: {exc}", file=sys.stderr)
        return 1
    source = policy_source(args.policies)
    try:
        engine = load(source.load_path, engine=args.engine)
        announce(source, engine.policy_set.content_hash)
        return engine, parse_case_text(text, file=name)
    except (CaseError, PolicyError) as exc:
        report_invalid(exc)
        return 1
    except EngineError as exc:
        print(f"imr-policy: {exc}", file=sys.stderr)
        return 1


def rule_paths(paths: list[Path]) -> PolicySource | None:
    """The rule files or folders a subcommand checks (default: the checkout's packs, else the installed
    ones), or None after reporting the ones that do not exist."""
    chosen = policy_source(paths)
    missing = [p for p in chosen.paths if not p.exists()]
    if missing:
        print(f"imr-policy: no such file or directory: {', '.join(map(str, missing))}", file=sys.stderr)
        return None
    return chosen

"""`imr-policy diff OLD NEW`: what changed between two policy sets, and which decisions would change.

Exit codes, like diff(1): 0 the sides are equivalent, 1 they differ, 2 trouble (usage, a side that
cannot be read or is not valid).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from imr_policy.cli import diff_report, html_report, render
from imr_policy.cli.progress import Progress
from imr_policy.compliance import corpus, runner
from imr_policy.compliance.diff import PolicyDiff, diff_policy_sets
from imr_policy.compliance.impact import (
    DEFAULT_PER_BUCKET,
    ROW_FIELDS,
    ImpactCollector,
    ImpactJob,
    ImpactReport,
    search_generated,
)
from imr_policy.compliance.sides import Side, SideError, load_pack, pack_sources, pinned, resolve
from imr_policy.model.errors import EngineError, PolicyError

EXIT_SAME, EXIT_DIFFERENT, EXIT_TROUBLE = 0, 1, 2


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "diff",
        help="what changed between two policy sets, and which decisions would change",
        description=(
            "Compare two policy sets rule by rule. Each side is a rule file, a directory of packs, an edition "
            "of the checkout's packs, else the installed ones (`<guideline>@<edition>`) or a git revision "
            "(`git:REV[:PATH]`, PATH relative "
            "to the repository's top level, default `policies`). Exit 0 when equivalent, 1 when they differ, "
            "2 on trouble."
        ),
    )
    p.add_argument("old", help="the old side")
    p.add_argument("new", help="the new side")
    p.add_argument("--format", choices=("text", "markdown", "json", "html"), default="text")
    p.add_argument("--out", type=Path, help="write the report to this file (default: standard output)")
    p.add_argument(
        "--impact",
        metavar="CORPUS|generated",
        help="evaluate a corpus (a directory of case files, or a JSON Lines file) under both sides, or search "
        "generated cases around the changes with `generated`",
    )
    p.add_argument(
        "--impact-out",
        type=Path,
        metavar="FILE",
        help="write every changed item of --impact to FILE: CSV when it ends in .csv, else JSON Lines "
        "(case id, request, service, jurisdiction, date of service, old and new determination and quantity, "
        "IMR outcomes, cause)",
    )
    p.add_argument("--engine", choices=("durable", "reference"), default="durable", help="engine for --impact")
    p.add_argument("--workers", type=int, help="worker processes for --impact CORPUS (default: every core)")
    p.add_argument("--dask", metavar="ADDRESS", help="run --impact CORPUS on this Dask scheduler")
    p.add_argument(
        "--examples", type=int, default=DEFAULT_PER_BUCKET, help="examples kept per kind of change and cause"
    )
    p.add_argument("--generated-examples", type=int, default=400, help="cases to generate for --impact generated")
    p.add_argument("--seed", type=int, help="seed for --impact generated (default: derandomized, repeatable)")
    p.add_argument("--repo", type=Path, help="the git repository for `git:` sides (default: the current directory)")
    p.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bar (default: on a terminal)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 1:
        print("imr-policy: --workers must be 1 or more", file=sys.stderr)
        return EXIT_TROUBLE
    if args.impact_out is not None and args.impact is None:
        print("imr-policy: --impact-out needs --impact CORPUS or --impact generated", file=sys.stderr)
        return EXIT_TROUBLE
    with tempfile.TemporaryDirectory() as scratch:
        try:
            old = resolve(args.old, scratch=Path(scratch), repo=args.repo)
            new = resolve(args.new, scratch=Path(scratch), repo=args.repo)
        except SideError as exc:
            print(f"imr-policy: {exc}", file=sys.stderr)
            return EXIT_TROUBLE
        except PolicyError as exc:
            print(render.diagnostics_text(exc.diagnostics), file=sys.stderr)
            print(f"imr-policy: {str(exc).splitlines()[0]}; nothing was compared", file=sys.stderr)
            return EXIT_TROUBLE
        diff = diff_policy_sets(old.policy_set, new.policy_set)
        impact: ImpactReport | None = None
        if args.impact is not None:
            try:
                sink = ChangeWriter.open(args.impact_out)
            except OSError as exc:
                reason = (exc.strerror or "error").lower()
                print(f"imr-policy: cannot write `{args.impact_out}`: {reason}", file=sys.stderr)
                return EXIT_TROUBLE
            try:
                with sink:
                    impact = _impact(args, old, new, diff, sink)
                if args.impact_out is not None:
                    print(f"imr-policy: {sink.written:,} changed items written to `{args.impact_out}`", file=sys.stderr)
            except (PolicyError, EngineError) as exc:
                print(f"imr-policy: {str(exc).splitlines()[0]}", file=sys.stderr)
                return EXIT_TROUBLE
            except _Usage as exc:
                print(f"imr-policy: {exc}", file=sys.stderr)
                return EXIT_TROUBLE
        info = _report_info(old, new, args.repo) if args.format == "html" else None
        out = _render(args.format, diff, old.label, new.label, impact, info)
    if args.out is not None:
        args.out.write_text(out, encoding="utf-8")
        print(f"imr-policy: report written to `{args.out}`", file=sys.stderr)
    else:
        sys.stdout.write(out)
    if diff.compared == 0:
        print("imr-policy: nothing comparable was found on the two sides; nothing was compared", file=sys.stderr)
        return EXIT_TROUBLE
    return EXIT_SAME if diff.equivalent else EXIT_DIFFERENT


class _Usage(Exception):
    pass


class ChangeWriter:
    """Writes each changed item as it is counted: a CSV row (a `.csv` file) or a JSON line."""

    def __init__(self, fh: TextIO | None, *, csv_format: bool) -> None:
        self._fh = fh
        self._csv = csv.DictWriter(fh, fieldnames=ROW_FIELDS, lineterminator="\n") if fh and csv_format else None
        if self._csv is not None:
            self._csv.writeheader()
        self.written = 0

    @classmethod
    def open(cls, path: Path | None) -> ChangeWriter:
        if path is None:
            return cls(None, csv_format=False)
        return cls(path.open("w", encoding="utf-8", newline=""), csv_format=path.suffix.lower() == ".csv")

    def __call__(self, row: dict[str, Any]) -> None:
        if self._fh is None:
            return
        if self._csv is not None:
            self._csv.writerow({k: "" if v is None else v for k, v in row.items()})
        else:
            self._fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.written += 1

    @property
    def sink(self) -> Callable[[dict[str, Any]], None] | None:
        return self if self._fh is not None else None

    def __enter__(self) -> ChangeWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.close()


def _revision(side: Side, repo: Path | None) -> str | None:
    """The git commit a side was read from: the revision of a `git:` side; for files on disk, the commit
    checked out in their repository, with "(uncommitted changes)" when they differ from it. None outside
    a repository or without git (bounded: a few seconds at most)."""

    def git(*argv: str, cwd: Path) -> str | None:
        try:
            done = subprocess.run(["git", *argv], cwd=cwd, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    if side.kind == "git":
        rev = side.spec.removeprefix("git:").partition(":")[0]
        return git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", cwd=(repo or Path.cwd()).resolve())
    where = side.root if side.root.is_dir() else side.root.parent
    commit = git("rev-parse", "HEAD", cwd=where)
    if commit is None:
        return None
    dirty = git("status", "--porcelain", "--", ".", cwd=where)
    return commit + (" (uncommitted changes)" if dirty else "")


def _report_info(old: Side, new: Side, repo: Path | None) -> html_report.ReportInfo:
    prepared = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return html_report.ReportInfo(
        prepared,
        html_report.SideInfo(old.label, old.result.content_hash, _revision(old, repo)),
        html_report.SideInfo(new.label, new.result.content_hash, _revision(new, repo)),
    )


def _render(
    fmt: str,
    diff: PolicyDiff,
    old: str,
    new: str,
    impact: ImpactReport | None,
    info: html_report.ReportInfo | None = None,
) -> str:
    if fmt == "json":
        return render.to_json(diff_report.json_document(diff, old=old, new=new, impact=impact))
    if fmt == "markdown":
        return diff_report.markdown(diff, old=old, new=new, impact=impact)
    if fmt == "html":
        return html_report.html(diff, old=old, new=new, impact=impact, info=info)
    return diff_report.text(diff, old=old, new=new, impact=impact)


def _procedural_note(old: Side, new: Side, diff: PolicyDiff) -> str:
    """What `--impact` does with UR procedural packs: it does not replay them (raises _Usage when there is
    nothing else to replay)."""
    if not old.result.editions and not new.result.editions:
        raise _Usage(
            "--impact replays cases through the clinical rules and compares determinations, approved quantities "
            "and IMR outcomes; these sides hold only UR procedural packs, whose time limits never change those "
            "(a UR decision's timeliness is reported on its own, docs/ur-timeliness.md), so --impact is not "
            "supported for them; run the diff without --impact to see every procedural change"
        )
    changes = sum(len(p.changes) + (p.relation in ("added", "removed")) for p in diff.procedures)
    if not changes:
        return ""
    return (
        f"{changes} change{'s' if changes != 1 else ''} to UR procedural packs not replayed: the replay compares "
        "determinations, approved quantities and IMR outcomes, which time limits never change; whether each UR "
        "decision was timely is not compared"
    )


def _impact(args: argparse.Namespace, old: Side, new: Side, diff: PolicyDiff, out: ChangeWriter) -> ImpactReport:
    procedural = _procedural_note(old, new, diff)
    old_pack, new_pack = pack_sources(old, new)
    notes = [
        f"old side: {old_pack.note}" if old_pack.note else "",
        f"new side: {new_pack.note}" if new_pack.note else "",
        procedural,
    ]
    if args.impact == "generated":
        try:
            import hypothesis  # noqa: F401, PLC0415 - generated cases need the `verify` extra
        except ImportError:
            raise _Usage(
                "`--impact generated` needs the `verify` extra (hypothesis is missing): "
                "pip install 'imr-policy[verify]'"
            ) from None
        old_engine = load_pack(old_pack, engine=args.engine)
        new_engine = load_pack(new_pack, engine=args.engine)
        with Progress(args.generated_examples, enabled=args.progress, what="generated cases") as bar:
            collector, region = search_generated(
                old_engine,
                new_engine,
                diff,
                examples=args.generated_examples,
                seed=args.seed,
                per_bucket=args.examples,
                progress=bar.update,
                sink=out.sink,
            )
        if region.empty:
            notes.append("no change affects decisions, so there was no region to search")
        else:
            notes.append(
                f"searched services {', '.join(region.services)}; jurisdictions {', '.join(region.jurisdictions)}; "
                f"thresholds {', '.join(map(str, region.thresholds))}; dates of service "
                f"{', '.join(d.isoformat() for d in region.dates)}"
            )
        return collector.report(
            mode="generated", corpus="generated", old=old.label, new=new.label, notes=notes, engine=args.engine
        )
    path = Path(args.impact)
    if not path.exists():
        raise _Usage(f"no such corpus: `{path}` (a directory of case files, a JSON Lines file, or `generated`)")
    job = ImpactJob(pinned(old_pack), pinned(new_pack), args.engine)
    collector = ImpactCollector(diff, per_bucket=args.examples, sink=out.sink)
    try:
        with Progress(corpus.count(path), enabled=args.progress) as bar:
            for cmp in runner.run(job, corpus.entries(path), workers=args.workers, dask=args.dask):
                collector.add(cmp)
                for problem in cmp.problems:
                    bar.write(problem)
                bar.update()
    except ImportError as exc:
        raise _Usage(f"--dask needs the Dask extra: pip install 'imr-policy[dask]' ({exc.name} is missing)") from None
    return collector.report(
        mode="corpus", corpus=str(path), old=old.label, new=new.label, notes=notes, engine=args.engine
    )

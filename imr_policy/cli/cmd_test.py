"""`imr-policy test [PATH ...]`: run policy tests (policies/<guideline>/tests/*.yaml) and report coverage."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from typing import Any

from imr_policy.authoring.policytest import Coverage, Run, Runner, TestResult, coverage, editions_under
from imr_policy.cli import render
from imr_policy.cli.common import GIVEN, PolicySource, announce, policy_source

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
WIDTH = render.WIDTH


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "test",
        help="run policy tests: cases with the determination, quantity and deciding rules they must get",
        description="Run the policy tests found in `tests/` folders under PATH (default: the "
        "checkout's policies/, else the installed packs). "
        "Each test file tests the rule packs two folders up (policies/ for policies/<guideline>/tests/), "
        "unless --policies names them.",
    )
    p.add_argument("paths", nargs="*", type=Path, help="test files, or directories to search for tests/ folders")
    p.add_argument("--policies", type=Path, help="the rule packs to test (default: beside each tests/ folder)")
    p.add_argument("--engine", choices=("durable", "reference"), default="durable")
    p.add_argument("--coverage", action="store_true", help="report which rules and exceptions the tests exercise")
    p.add_argument(
        "--min-coverage",
        type=float,
        metavar="N",
        help="fail unless the tests cover at least N percent of the rules' outcomes of every edition, and "
        "overall (implies --coverage)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="list only the tests that do not pass")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    source = policy_source(args.paths)
    paths: list[Path] = list(source.paths)
    missing = [p for p in paths if not p.exists()]
    if missing:
        print(f"imr-policy: no such file or directory: {', '.join(map(str, missing))}", file=sys.stderr)
        return EXIT_USAGE
    if args.policies is not None and not args.policies.exists():
        print(f"imr-policy: no such file or directory: {args.policies}", file=sys.stderr)
        return EXIT_USAGE
    if args.min_coverage is not None and not 0 <= args.min_coverage <= 100:
        print("imr-policy: --min-coverage takes a percentage from 0 to 100", file=sys.stderr)
        return EXIT_USAGE
    result = Runner(policies=args.policies, engine=args.engine, display_root=Path.cwd()).run(paths)
    cov = (
        coverage(editions_under(result, paths), result.results)
        if args.coverage or args.min_coverage is not None
        else None
    )
    short = cov.below(args.min_coverage) if cov is not None and args.min_coverage is not None else ()
    below = args.min_coverage is not None and cov is not None and (cov.percent < args.min_coverage or bool(short))
    used = [
        PolicySource((root,), GIVEN if args.policies is not None else source.origin).to_dict(
            engine.policy_set.content_hash
        )
        for root, engine in result.engines
    ]
    if args.format == "json":
        gate = (
            {"min_coverage": args.min_coverage, "below_minimum": [e.key for e in short]}
            if args.min_coverage is not None
            else {}
        )
        sys.stdout.write(render.to_json({**to_dict(result, cov), "policy_sets": used, **gate}))
    else:
        for root, engine in result.engines:
            origin = GIVEN if args.policies is not None else source.origin
            announce(PolicySource((root,), origin), engine.policy_set.content_hash)
        if result.diagnostics:
            print(render.diagnostics_text(result.diagnostics), file=sys.stderr)
        sys.stdout.write(report_text(result, quiet=args.quiet))
        if cov is not None:
            shown = {
                (e.guideline_id, e.edition_id): _relative(root / e.file)
                for root, engine in result.engines
                for e in engine.editions
            }
            sys.stdout.write(coverage_text(cov, shown))
        if below:
            assert cov is not None
            for e in short:
                print(f"coverage of {e.key} ({e.file}) {e.percent:.1f}% is below the minimum of {args.min_coverage:g}%")
            if cov.percent < args.min_coverage:
                print(f"coverage {cov.percent:.1f}% is below the minimum of {args.min_coverage:g}%")
    return EXIT_OK if result.ok and not below else EXIT_FAILED


# ------------------------------------------------------------------------------------------------ text


def _wrap(text: str, indent: str) -> list[str]:
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=indent,
        subsequent_indent=indent + "  ",
        break_on_hyphens=False,
        break_long_words=False,
    ) or [indent]


def result_text(r: TestResult) -> list[str]:
    """The lines for one test: its status, and for a test that did not pass, why."""
    where = f"  ({r.test.location})" if r.status != "pass" else ""
    lines = [f"  {r.status.upper() if r.status != 'pass' else 'pass':5} {r.test.name}{where}"]
    if r.status == "pass":
        return lines
    pad = " " * 8
    for d in r.diagnostics:
        lines.extend(pad + line for line in d.render().splitlines())
    if r.error:
        lines.extend(_wrap(r.error, pad))
    for m in r.mismatches:
        lines.extend(_wrap(m.text, pad))
    if r.item is not None:
        lines.append(pad + "trace:")
        for t in r.item.trace:
            state = "decided" if t.decided else "applied, did not decide" if t.applied else "did not apply"
            reason = f": {t.why_not}" if t.why_not else ""
            lines.extend(_wrap(f"{t.guideline}@{t.edition} {t.kind} `{t.rule}` {state}{reason}", pad + "  "))
        if r.item.missing_facts:
            lines.append(pad + "missing facts: " + ", ".join(r.item.missing_facts))
        lines.append(pad + "rationale:")
        for paragraph in r.item.rationale.split("\n\n"):
            lines.extend(_wrap(paragraph, pad + "  "))
    return lines


def report_text(result: Run, *, quiet: bool = False) -> str:
    lines: list[str] = []
    by_file: dict[str, list[TestResult]] = {}
    for r in result.results:
        by_file.setdefault(r.test.file, []).append(r)
    for file, results in by_file.items():
        shown = [r for r in results if not (quiet and r.passed)]
        if not shown:
            continue
        lines.append(file)
        for r in shown:
            lines.extend(result_text(r))
        lines.append("")
    counts = result.counts()
    total = len(result.results)
    summary = f"{total} test{'s' if total != 1 else ''}: {counts['pass']} passed, {counts['fail']} failed"
    summary += f", {counts['error']} error{'s' if counts['error'] != 1 else ''}"
    broken = len({d.file for d in result.diagnostics})
    if broken:
        summary += f"; {broken} file{'s' if broken != 1 else ''} could not be run (see the messages above)"
    lines.append(summary)
    return "\n".join(lines) + "\n"


def _relative(path: Path) -> str:
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def coverage_text(cov: Coverage, files: dict[tuple[str, str], str] | None = None) -> str:
    lines = [
        "",
        "Coverage: each rule and exception counts once for a test in which it decided and once for a test in",
        "which it was considered and did not decide (a rule that decides whenever it is considered counts once).",
    ]
    for e in cov.editions:
        lines.append("")
        file = (files or {}).get((e.guideline, e.edition), e.file)
        lines.append(f"{e.key}  {e.percent:.1f}% ({e.hits} of {e.points})  {file}")
        for i in e.items:
            decided = f"decided in {len(i.decided_in)}" if i.decided_in else "never decided"
            if i.always_decides:
                other = "always decides when considered"
            else:
                other = f"not in {len(i.not_decided_in)}" if i.not_decided_in else "never seen not deciding"
            mark = "ok  " if i.covered else "MISS"
            lines.append(f"  {mark} {i.kind:9} {i.id}: {decided}, {other}")
        untested = [c for c in e.citations if c.ruled and not c.tested]
        unruled = [c for c in e.citations if not c.ruled and not c.tested]
        if unruled:
            lines.append("  cited sections with no rule and no test: " + ", ".join(f"`{c.id}`" for c in unruled))
        if untested:
            lines.append("  cited sections with rules but no test: " + ", ".join(f"`{c.id}`" for c in untested))
    lines.append("")
    lines.append(f"total rule coverage: {cov.percent:.1f}% ({cov.hits} of {cov.points})")
    return "\n".join(lines) + "\n"


def to_dict(result: Run, cov: Coverage | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ok": result.ok,
        "counts": result.counts(),
        "tests": [
            {
                "file": r.test.file,
                "name": r.test.name,
                "line": r.test.line,
                "status": r.status,
                "mismatches": [{"field": m.field, "expected": m.expected, "actual": m.actual} for m in r.mismatches],
                "error": r.error,
                "diagnostics": [d.to_dict() for d in r.diagnostics],
                "item": r.item.to_dict() if r.item is not None and not r.passed else None,
            }
            for r in result.results
        ],
        "diagnostics": [d.to_dict() for d in result.diagnostics],
    }
    if cov is not None:
        out["coverage"] = {
            "percent": round(cov.percent, 2),
            "editions": [
                {
                    "guideline": e.guideline,
                    "edition": e.edition,
                    "file": e.file,
                    "percent": round(e.percent, 2),
                    "items": [
                        {
                            "id": i.id,
                            "kind": i.kind,
                            "decided_in": list(i.decided_in),
                            "not_decided_in": list(i.not_decided_in),
                            "always_decides": i.always_decides,
                            "covered": i.covered,
                        }
                        for i in e.items
                    ],
                    "citations": [
                        {"id": c.id, "section": c.section, "ruled": c.ruled, "tested": c.tested} for c in e.citations
                    ],
                }
                for e in cov.editions
            ],
        }
    return out

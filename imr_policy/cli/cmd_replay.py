"""`imr-policy replay LOG`: decide every logged case again and report every decision that would differ."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from imr_policy import load
from imr_policy.cli import render
from imr_policy.cli.common import announce, policy_source, report_invalid
from imr_policy.compliance.audit import read_log, replay
from imr_policy.model.errors import PolicyError

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "replay",
        help="decide the cases of a decision log again and report any decision that would differ",
        description="Exit 0 when every logged decision is decided the same way again (a change of wording "
        "alone, with the same decisions, is reported but is not a difference); 1 when a decision differs or a "
        "record cannot be replayed.",
    )
    p.add_argument("log", type=Path, help="a decision log written by `imr-policy serve` (JSON Lines or SQLite)")
    p.add_argument(
        "--policies",
        type=Path,
        help="a directory of rule packs (default: the checkout's policies/, else the installed packs)",
    )
    p.add_argument("--engine", choices=("durable", "reference"), default="durable")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.log.is_file():
        print(f"imr-policy: no such file: {args.log}", file=sys.stderr)
        return EXIT_USAGE
    try:
        source = policy_source(args.policies)
        engine = load(source.load_path, engine=args.engine)
        announce(source, engine.policy_set.content_hash)
    except PolicyError as exc:
        report_invalid(exc)
        return EXIT_INVALID
    results = list(replay(read_log(args.log), engine))
    counts = Counter(r.status for r in results)
    in_use = engine.policy_set.content_hash
    other_set = sum(1 for r in results if r.recorded_policy_set not in (None, in_use))
    if args.format == "json":
        sys.stdout.write(
            render.to_json(
                {
                    "policy_set": {"id": engine.policy_set.id, "content_hash": in_use},
                    "records": len(results),
                    "same": counts["same"],
                    "differs": counts["differs"],
                    "wording_only": counts["worded"],
                    "unreplayable": counts["unreplayable"],
                    "decided_by_another_policy_set": other_set,
                    "problems": [
                        {
                            "where": r.where,
                            "decision_id": r.decision_id,
                            "case_id": r.case_id,
                            "status": r.status,
                            "recorded_policy_set": r.recorded_policy_set,
                            "differences": list(r.differences),
                        }
                        for r in results
                        if r.status != "same"
                    ],
                }
            )
        )
    else:
        # the decisions that differ or cannot be replayed first, then those worded differently
        for status in ("differs", "unreplayable", "worded"):
            for r in results:
                if r.status != status:
                    continue
                what = {
                    "differs": "differs",
                    "unreplayable": "cannot be replayed",
                    "worded": "is worded differently (the same decision)",
                }[status]
                who = f"decision {r.decision_id} (case `{r.case_id}`)" if r.decision_id else "a record"
                print(f"{args.log}: {r.where}: {who} {what}")
                for line in r.differences if status != "worded" else ():
                    print(f"  {line}")
                if r.recorded_policy_set not in (None, in_use):
                    print(f"  decided then by policy set {r.recorded_policy_set}")
        records = "decision" if len(results) == 1 else "decisions"
        print(
            f"{len(results)} {records} replayed with policy set {engine.policy_set.id} ({in_use}): "
            f"{counts['same']} same, {counts['differs']} differ, {counts['unreplayable']} cannot be replayed"
            + (f"; {counts['worded']} decided the same, worded differently" if counts["worded"] else "")
            + (f"; {other_set} were decided by another policy set" if other_set else "")
        )
    return EXIT_OK if counts["differs"] == counts["unreplayable"] == 0 else EXIT_INVALID

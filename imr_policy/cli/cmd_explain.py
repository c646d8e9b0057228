"""`imr-policy explain CASE`: why each rule considered did or did not decide, and what would change it."""

from __future__ import annotations

import argparse
import sys
import textwrap
from typing import Any

from imr_policy.authoring.why import Explanation, explain_case
from imr_policy.cli import render
from imr_policy.cli.common import add_engine_options, engine_and_case
from imr_policy.model.errors import EngineError

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "explain",
        help="show, rule by rule, why a case was decided as it was and what would have changed it",
        description="For each rule and exception considered for each request: its conditions with the "
        "case's values, and for one that did not decide, the smallest change of facts under which it "
        "would (found by evaluating the changed facts again, never guessed).",
    )
    p.add_argument("case", help="a case file (YAML or JSON), or - for standard input")
    p.add_argument("--request", metavar="ID", help="explain this request only")
    p.add_argument(
        "--rule", metavar="RULE", help="explain this rule only: rule-id, guideline:rule-id or guideline@edition:rule-id"
    )
    add_engine_options(p)
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    loaded = engine_and_case(args)
    if isinstance(loaded, int):
        return loaded
    engine, case = loaded
    try:
        explanation = explain_case(engine, case, request=args.request, rule=args.rule)
    except EngineError as exc:
        print(f"imr-policy: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except ValueError as exc:
        print(f"imr-policy: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.format == "json":
        sys.stdout.write(render.to_json(explanation.to_dict()))
    else:
        sys.stdout.write(explanation_text(explanation))
    return EXIT_OK


def _wrap(text: str, indent: str, more: str = "  ") -> list[str]:
    return textwrap.wrap(
        text,
        render.WIDTH,
        initial_indent=indent,
        subsequent_indent=indent + more,
        break_on_hyphens=False,
        break_long_words=False,
    ) or [indent]


def _value(value: Any) -> str:
    if value is None:
        return "not given"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ", ".join(_value(v) for v in value)
    return str(value)


def explanation_text(explanation: Explanation) -> str:
    lines = [f"Case: {explanation.case_id}", ""]
    for item in explanation.items:
        decided = {
            "certify": f"certify, {item.approved_quantity} of {item.requested_quantity}",
            "modify": f"modify, {item.approved_quantity} of {item.requested_quantity} certified",
            "non_certify": f"non-certify, 0 of {item.requested_quantity}",
            "pend": "pend",
        }.get(item.determination, item.determination)
        lines.append(f"Request `{item.request}` ({item.service.replace('_', ' ')}): {decided}")
        lines.extend(_wrap("facts: " + ", ".join(f"{k} {_value(v)}" for k, v in item.facts), "  "))
        for key, counts in item.counted_together:
            each = " + ".join(f"{n} {s.replace('_', ' ')}" for s, n in counts)
            total = sum(n for _, n in counts)
            lines.extend(_wrap(f"{key} counts these services' visits together: completed {total} ({each})", "  "))
        if not item.rules:
            lines.append("  no rule was considered (see `imr-policy evaluate` for the evidence search)")
        edition = ""
        for r in item.rules:
            key = f"{r.guideline}@{r.edition}"
            if key != edition:
                lines.append("")
                lines.append(f"  {key}")
                edition = key
            state = "DECIDED" if r.decided else "held, did not decide" if r.held else "did not hold"
            if r.kind == "exception":
                state = "APPLIED" if r.decided else "held, not applied" if r.held else "did not hold"
            lines.append(f"    {r.kind} `{r.rule}`: {state}")
            if not r.conditions:
                lines.append("      (no conditions: it holds for every request of its services)")
            for c in r.conditions:
                lines.extend(_wrap(("yes  " if c.held else "no   ") + c.text, "      ", "       "))
            if r.note:
                lines.extend(_wrap(r.note, "      "))
            for cf in r.counterfactuals:
                lines.extend(_wrap("-> " + cf.text, "      ", "   "))
            if r.searched and not r.counterfactuals:
                lines.extend(_wrap("-> no change of up to three facts makes it decide", "      ", "   "))
        if item.readings:
            lines.append("")
            lines.append("  under each reading of what the records do not state:")
            for reading in item.readings:
                assumed = ", ".join(f"{k} {v}" for k, v in reading.assumed)
                got = {
                    "certify": f"certify, {reading.approved_quantity} of {item.requested_quantity}",
                    "modify": f"modify, {reading.approved_quantity} of {item.requested_quantity} certified",
                    "non_certify": f"non-certify, 0 of {item.requested_quantity}",
                    "pend": "pend",
                }[reading.determination]
                imr = f"; IMR {reading.imr_outcome}" if reading.imr_outcome else ""
                lines.extend(_wrap(f"{assumed}: {got}{imr}", "    ", "  "))
        lines.append("")
    return "\n".join(lines)

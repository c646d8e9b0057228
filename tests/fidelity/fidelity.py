"""Score the engine against real public decisions (tests/fidelity/cases/*.yaml; README.md beside it).

    python3 tests/fidelity/fidelity.py [--engine durable|reference] [--min-provenance GRADE] [-v]

For every disputed item (a request with a UR decision under dispute and a real outcome), the engine
either decides it (gives an IMR outcome) or not; a decided item agrees when its IMR outcome is the real
one. The always-uphold baseline decides every item as upheld: it agrees on every upheld item and catches
no overturn.

A second, separate set (tests/fidelity/decidability/*.yaml) holds real decisions whose facts are visible
but whose outcome is not: they are reported only as "decided N of M", never as agreement.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# run as a script from a checkout: the package beside this suite, not another installed copy
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import imr_policy

CASES = Path(__file__).resolve().parent / "cases"
DECIDABILITY = Path(__file__).resolve().parent / "decidability"


@dataclass(frozen=True, slots=True)
class Scored:
    file: str
    request: str
    service: str
    expected: str  # upheld | overturned
    got: str | None  # the engine's IMR outcome, None when it does not decide
    determination: str
    rests_on: str | None = None


def load_cases(folder: Path = CASES) -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text(encoding="utf-8")) | {"_file": p.name} for p in sorted(folder.glob("*.yaml"))]


def load_decidability() -> list[dict[str, Any]]:
    """Real decisions whose outcome is not visible: `disputed` lists the request ids, there is no `expected`."""
    return load_cases(DECIDABILITY)


@dataclass(frozen=True, slots=True)
class Attempted:
    file: str
    request: str
    service: str
    got: str | None  # the engine's IMR outcome, None when it does not decide
    determination: str
    missing: tuple[str, ...]


def attempt(engine: imr_policy.Engine, cases: list[dict[str, Any]], **options: Any) -> list[Attempted]:
    out: list[Attempted] = []
    for doc in cases:
        determination = engine.evaluate(doc["case"], **options)
        for request_id in doc["disputed"]:
            item = determination.item(request_id)
            out.append(
                Attempted(
                    doc["_file"],
                    request_id,
                    item.service,
                    item.imr_outcome,
                    item.determination,
                    tuple(item.missing_facts),
                )
            )
    return out


def decidability_lines(attempted: list[Attempted]) -> list[str]:
    decided = sum(1 for a in attempted if a.got is not None)
    pct = f"{100 * decided / len(attempted):.0f}%" if attempted else "n/a"
    return [
        f"decidability only (outcome not visible): decided {decided} of {len(attempted)} ({pct}); "
        "agreement not measured"
    ]


def score(engine: imr_policy.Engine, cases: list[dict[str, Any]], **options: Any) -> list[Scored]:
    out: list[Scored] = []
    for doc in cases:
        determination = engine.evaluate(doc["case"], **options)
        for request_id, truth in doc["expected"].items():
            item = determination.item(request_id)
            out.append(
                Scored(
                    doc["_file"],
                    request_id,
                    item.service,
                    truth["imr_outcome"],
                    item.imr_outcome,
                    item.determination,
                )
            )
    return out


@dataclass(frozen=True, slots=True)
class Figures:
    items: int
    decided: int
    agreeing: int
    overturned: int  # real overturns in the suite
    overturns_caught: int
    baseline_agreeing: int  # always-uphold

    def lines(self) -> list[str]:
        pct = lambda a, b: f"{100 * a / b:.0f}%" if b else "n/a"  # noqa: E731
        return [
            f"disputed items:        {self.items}",
            f"decided:               {self.decided} ({pct(self.decided, self.items)})",
            f"agreeing (of decided): {self.agreeing} ({pct(self.agreeing, self.decided)})",
            f"overturns caught:      {self.overturns_caught} of {self.overturned}",
            f"always-uphold baseline: decides {self.items}, agrees {self.baseline_agreeing} "
            f"({pct(self.baseline_agreeing, self.items)}), catches 0 of {self.overturned} overturns",
        ]


def figures(scored: list[Scored]) -> Figures:
    decided = [s for s in scored if s.got is not None]
    return Figures(
        items=len(scored),
        decided=len(decided),
        agreeing=sum(1 for s in decided if s.got == s.expected),
        overturned=sum(1 for s in scored if s.expected == "overturned"),
        overturns_caught=sum(1 for s in decided if s.expected == "overturned" and s.got == "overturned"),
        baseline_agreeing=sum(1 for s in scored if s.expected == "upheld"),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("durable", "reference"), default="durable")
    parser.add_argument("--min-provenance", default=None)
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per item")
    args = parser.parse_args(argv)
    engine = imr_policy.load(engine=args.engine)
    options = {"min_provenance": args.min_provenance} if args.min_provenance else {}
    scored = score(engine, load_cases(), **options)
    if args.verbose:
        for s in scored:
            verdict = "pend" if s.got is None else ("agrees" if s.got == s.expected else "DISAGREES")
            print(
                f"{s.file:32} {s.request:14} {s.service:22} real {s.expected:10} engine {s.determination:11} "
                f"{s.got or '-':10} {verdict}"
            )
        print()
    print("\n".join(figures(scored).lines()))
    attempted = attempt(engine, load_decidability(), **options)
    if args.verbose:
        print()
        for a in attempted:
            note = "pend, missing " + ", ".join(a.missing) if a.got is None else f"{a.determination} -> {a.got}"
            print(f"{a.file:32} {a.request:14} {a.service:22} {note}")
    print()
    print("\n".join(decidability_lines(attempted)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Deterministic generated cases for corpus tests (impact, batch): psychotherapy and medication
management around the ODG and MTUS thresholds, in California and Texas."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def generated_cases(n: int, *, seed: int = 6) -> Iterator[dict[str, Any]]:
    rnd = random.Random(seed)
    for i in range(n):
        service = rnd.choice(["psychotherapy", "psychotherapy", "psychotherapy", "medication_management"])
        quantity = rnd.choice([1, 2, 3, 4, 6, 8, 10, 12])
        case: dict[str, Any] = {
            "case_id": f"gen-{i}",
            "jurisdiction": rnd.choice(["CA", "TX", "TX"]),
            "date_of_injury": "2012-05-17",
            "diagnoses": [{"description": "major depressive disorder", "severity": rnd.choice(["moderate", "severe"])}],
            "requests": [{"id": "r1", "service": service, "quantity": quantity, "date_of_service": "2015-07-10"}],
        }
        completed = rnd.choice([0, 2, 4, 6, 10, 14, 16, 18, 19, 20, 22])
        if completed:
            fi = rnd.choice(["documented", "documented", "not_documented", "unknown"])
            case["history"] = [{"service": service, "completed": completed, "functional_improvement": fi}]
        ur = rnd.choice([None, "deny", "modify", "approve"])
        if ur == "modify" and quantity > 1:
            case["utilization_review"] = [{"request": "r1", "decision": "modify", "approved_quantity": 1}]
        elif ur in ("deny", "approve"):
            case["utilization_review"] = [{"request": "r1", "decision": ur}]
        yield case


def write_jsonl(path: Path, cases: Iterator[dict[str, Any]]) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as fh:
        for case in cases:
            fh.write(json.dumps(case) + "\n")
            count += 1
    return count

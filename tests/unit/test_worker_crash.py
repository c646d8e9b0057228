"""Issue 14.9: batch and impact ran on a process pool that one crashed worker (a durable_rules segfault,
the OOM killer) broke for the whole corpus: BrokenProcessPool, and no record for any case after it. The
runner now rebuilds the pool, runs the chunks that were in flight one entry at a time, reports the entry
that kills its process again as an engine error, and goes on."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from imr_policy.compliance import runner
from imr_policy.compliance.batch import EvaluateJob, Record
from imr_policy.compliance.corpus import Entry, entries
from imr_policy.compliance.impact import CaseComparison, ImpactJob
from imr_policy.compliance.sides import pack_of
from tests.conftest import EXAMPLES

MARK = "crash-me"


@dataclass(frozen=True, slots=True)
class CrashingEvaluate(EvaluateJob):
    """EvaluateJob whose worker process dies, as durable_rules does when it crashes, on the marked case."""

    def run(self, state: Any, entry: Entry) -> Record:
        if entry.text is not None and MARK in entry.text:
            os._exit(70)
        return EvaluateJob.run(self, state, entry)


@dataclass(frozen=True, slots=True)
class CrashingImpact(ImpactJob):
    def run(self, state: Any, entry: Entry) -> CaseComparison:
        if entry.text is not None and MARK in entry.text:
            os._exit(70)
        return ImpactJob.run(self, state, entry)


def _corpus(tmp_path: Path, n: int = 14, crash_at: int = 5) -> Path:
    case = yaml.safe_load((EXAMPLES / "imr-2015-psych-example.yaml").read_text(encoding="utf-8"))
    lines = []
    for i in range(n):
        lines.append(json.dumps({**case, "case_id": MARK if i == crash_at else f"case-{i}"}, default=str))
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_batch_reports_the_crashed_case_and_goes_on(tmp_path: Path) -> None:
    path = _corpus(tmp_path)
    job = CrashingEvaluate(pack_of(None, "shipped"))
    records = list(runner.run(job, entries(path), workers=2, chunk_size=3))
    assert [r.index for r in records] == list(range(14))  # every case, in input order
    crashed = [r for r in records if r.status == "error"]
    assert [r.index for r in crashed] == [5]
    assert "engine error: the worker process deciding it died" in json.loads(crashed[0].line)["error"]
    assert {r.status for r in records if r.index != 5} == {"decided"}
    assert [json.loads(r.line)["case_id"] for r in records if r.index != 5] == [
        f"case-{i}" for i in range(14) if i != 5
    ]


def test_impact_reports_the_crashed_case_and_goes_on(tmp_path: Path) -> None:
    path = _corpus(tmp_path, n=8, crash_at=0)
    pack = pack_of(None, "shipped")
    results = list(runner.run(CrashingImpact(pack, pack), entries(path), workers=2, chunk_size=2))
    assert [r.index for r in results] == list(range(8))
    assert [(r.index, r.status) for r in results if r.status != "compared"] == [(0, "error")]
    assert "engine error: the worker process deciding it died" in results[0].problems[0]

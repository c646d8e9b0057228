"""Throughput and latency of imr_policy on the example case, next to the raw cost of durable_rules.

Why this shape: an absolute figure ("320 µs per case") depends on the machine; the ratio to the raw
durable_rules calls measured in the same process, on the same machine, in the same minute does not,
and it says how much of an evaluation is the rules engine and how much is imr_policy around it.

Method (see benchmarks/README.md):
* every subject is a zero-argument callable; its result is checked once before anything is timed;
* the run is made of interleaved rounds, subjects in a new random order each round, so that drift of
  the machine (frequency, other load) is spread over all subjects instead of landing on one;
* per round and subject: one batch timed as a whole (-> µs/op; the report gives the median over
  rounds), then a slice of individually timed calls (-> p50/p99/p99.9 over all rounds' slices);
* the garbage collector stays enabled, as in normal operation; collections are counted and reported.

Run from the repository root:  python benchmarks/bench_evaluate.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib.metadata
import itertools
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from durable import engine as durable_engine

# Measure the checkout this file belongs to, not whatever imr_policy happens to be installed.
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import imr_policy  # noqa: E402
from imr_policy.engine.compile import DurableMatcher  # noqa: E402
from imr_policy.evaluate import Engine  # noqa: E402
from imr_policy.model.values import Edition  # noqa: E402

DEFAULT_CASE = REPO / "examples" / "cases" / "imr-2015-psych-example.yaml"
REQUEST_COUNTS = (1, 10)  # besides the example's 2: per-request cost as a case grows

# The baseline: the smallest ruleset that still looks like one of ours (single-message rules, each
# anchored on a positive test so the engine's own state fact can never match, mutually exclusive).
RAW_RULES: dict[str, Any] = {
    "within": {"all": [{"m": {"$and": [{"kind": "bench"}, {"$lte": {"quantity": 6}}]}}], "run": "within"},
    "beyond": {"all": [{"m": {"$and": [{"kind": "bench"}, {"$gt": {"quantity": 6}}]}}], "run": "beyond"},
    "other": {"all": [{"m": {"$and": [{"kind": "bench"}, {"service": "other"}]}}], "run": "other"},
}
RAW_MESSAGE: dict[str, Any] = {"sid": "bench", "kind": "bench", "service": "psychotherapy", "quantity": 6}


# ---------------------------------------------------------------------------------------------- subjects


@dataclass
class Subject:
    """One thing to time, with everything measured about it."""

    key: str
    label: str
    call: Callable[[], object]
    batch: int = 0
    round_ns: list[float] = field(default_factory=list)
    samples_ns: list[int] = field(default_factory=list)
    gc_collections: list[int] = field(default_factory=lambda: [0, 0, 0])

    @property
    def median_ns(self) -> float:
        return statistics.median(self.round_ns)

    def percentile_ns(self, q: float) -> float:
        """Nearest-rank percentile of the individually timed calls (no interpolation: a real sample)."""
        ordered = sorted(self.samples_ns)
        rank = max(1, math.ceil(q / 100 * len(ordered)))
        return float(ordered[rank - 1])


class _QuietHost(durable_engine.Host):  # type: ignore[misc]
    """durable-rules.md §2.4: the stock Host's dispatch threads race with post(); this one has none."""

    def __init__(self, actions: dict[str, Callable[[Any], None]]) -> None:
        self._bench_actions = actions
        super().__init__()

    def get_action(self, action_name: str) -> Callable[[Any], None]:
        return self._bench_actions[action_name]

    def _run(self) -> None:
        """No background dispatch: every action runs in the caller's thread, inside post()."""


def _raw_action(name: str) -> Callable[[Any], None]:
    def action(c: Any) -> None:
        c.s.fired = name

    return action


def raw_durable_calls() -> tuple[Callable[[], object], Callable[[], object]]:
    """(one event post, one assert_fact + retract_fact pair) on the minimal ruleset, each checked once.

    The fact variant carries a fresh nonce per call, as compile.DurableMatcher's messages do.
    """
    host = _QuietHost({name: _raw_action(name) for name in RAW_RULES})
    host.set_rulesets({"raw_post": json.loads(json.dumps(RAW_RULES)), "raw_fact": json.loads(json.dumps(RAW_RULES))})
    nonces = itertools.count(1)

    def post() -> object:
        return host.post("raw_post", RAW_MESSAGE)

    def assert_retract() -> object:
        message = {**RAW_MESSAGE, "nonce": next(nonces)}
        state = host.assert_fact("raw_fact", message)
        host.retract_fact("raw_fact", message)
        return state

    for call in (post, assert_retract):
        state = call()
        if not isinstance(state, dict) or state.get("fired") != "within" or "exception" in state:
            raise SystemExit(f"raw durable_rules baseline returned {state!r}; expected the `within` rule to fire")
    return post, assert_retract


class RecordingMatcher:
    """Wraps a matcher to record every call: how many durable_rules round trips one evaluation makes."""

    def __init__(self, inner: DurableMatcher) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls: list[tuple[Edition, dict[str, Any], tuple[str, ...]]] = []

    def match(self, edition: Edition, facts: Mapping[str, Any]) -> tuple[str, ...]:
        fired = self.inner.match(edition, facts)
        self.calls.append((edition, dict(facts), fired))
        return fired


def with_requests(case: Mapping[str, Any], n: int) -> dict[str, Any]:
    """The example with `n` requests: its requests (and their UR decisions) repeated in turn, each copy
    with its own id (n=1: the first request alone)."""
    base = case["requests"]
    reviews = {u["request"]: u for u in case.get("utilization_review", [])}
    requests, urs = [], []
    for k in range(n):
        req = base[k % len(base)]
        rid = req["id"] if k < len(base) else f"{req['id']}-{k}"
        requests.append({**req, "id": rid})
        if req["id"] in reviews:
            urs.append({**reviews[req["id"]], "request": rid})
    return {**case, "requests": requests, "utilization_review": urs}


def with_unstated(case: Mapping[str, Any]) -> dict[str, Any]:
    """The example with its psychotherapy history's functional improvement and the diagnosis severity
    left unstated: the psychotherapy request is decided under every reading of them (rule 7)."""
    out = json.loads(json.dumps(case, default=str))
    out["history"][0]["functional_improvement"] = "unknown"
    out["diagnoses"][0].pop("severity", None)
    return out


def plain_floor(case: Mapping[str, Any]) -> bool:
    """The cheapest possible 'decision' on the same dict: the cost of a Python call and two lookups."""
    return bool(case["requests"][0]["quantity"] <= 6)


# ---------------------------------------------------------------------------------------------- timing


def time_batch(call: Callable[[], object], n: int) -> float:
    """Nanoseconds per call over n back-to-back calls (loop overhead included, as for every subject)."""
    start = time.perf_counter_ns()
    for _ in itertools.repeat(None, n):
        call()
    return (time.perf_counter_ns() - start) / n


def calibrate(call: Callable[[], object], min_time_s: float) -> int:
    """A batch size that takes about min_time_s: enough calls to drown timer resolution and jitter."""
    n = 1
    while True:
        elapsed_ns = time_batch(call, n) * n
        if elapsed_ns >= min_time_s * 1e9 / 10 or n >= 10_000_000:
            return max(1, math.ceil(n * min_time_s * 1e9 / max(elapsed_ns, 1)))
        n *= 4


def time_each(call: Callable[[], object], n: int, into: list[int]) -> None:
    """Time n calls one by one with perf_counter_ns (for the latency distribution)."""
    clock = time.perf_counter_ns
    append = into.append
    for _ in itertools.repeat(None, n):
        start = clock()
        call()
        append(clock() - start)


def gc_counts() -> list[int]:
    return [generation["collections"] for generation in gc.get_stats()]


def timer_overhead_ns() -> float:
    """Median cost of two back-to-back perf_counter_ns calls: the floor under every latency sample."""
    clock = time.perf_counter_ns
    deltas = []
    for _ in range(20_000):
        start = clock()
        deltas.append(clock() - start)
    return statistics.median(deltas)


def run_rounds(subjects: list[Subject], rounds: int, latency_calls: int, seed: int) -> None:
    """Interleaved rounds: each round visits every subject once, in a fresh random order."""
    rng = random.Random(seed)
    order = list(subjects)
    per_round = [latency_calls // rounds + (1 if r < latency_calls % rounds else 0) for r in range(rounds)]
    for r in range(rounds):
        rng.shuffle(order)
        for s in order:
            s.round_ns.append(time_batch(s.call, s.batch))
            before = gc_counts()
            time_each(s.call, per_round[r], s.samples_ns)
            s.gc_collections = [
                total + b - a for total, a, b in zip(s.gc_collections, before, gc_counts(), strict=True)
            ]
        print(f"  round {r + 1}/{rounds} done", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- reporting


def loadavg() -> list[str]:
    """1/5/15-minute load averages: on a 2-core machine, anything else running shows up in the figures."""
    try:
        return Path("/proc/loadavg").read_text(encoding="utf-8").split()[:3]
    except OSError:
        return []


def machine_info() -> dict[str, Any]:
    """What a reader needs to compare this run with another one."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "loadavg_at_start": loadavg(),
        "durable_rules": importlib.metadata.version("durable-rules"),
        "imr_policy": imr_policy.__version__,
        "checkout": commit,
        "gc_enabled": gc.isenabled(),
        "gc_threshold": list(gc.get_threshold()),
    }


def fmt_rate(ops: float) -> str:
    return f"{ops:,.0f}" if ops >= 100 else f"{ops:,.1f}"


def report(
    subjects: dict[str, Subject], machine: dict[str, Any], extra: dict[str, Any], config: dict[str, Any]
) -> dict[str, Any]:
    """Print the table and ratios; return the same figures as a JSON-ready dict."""
    floor = subjects["floor"].median_ns
    calls = extra["durable_matches_per_evaluation"]
    ev = subjects["evaluate_durable"].median_ns
    post = subjects["raw_post"].median_ns
    fact = subjects["raw_assert_retract"].median_ns
    ratios = {
        "evaluate_durable / raw_post": ev / post,
        "evaluate_durable / raw_assert_retract": ev / fact,
        f"evaluate_durable / ({calls} x raw_assert_retract)": ev / (calls * fact) if calls else math.nan,
        f"matcher_only / ({calls} x raw_assert_retract)": (
            subjects["matcher_only"].median_ns / (calls * fact) if calls else math.nan
        ),
        "evaluate_durable / evaluate_reference": ev / subjects["evaluate_reference"].median_ns,
        "validate_case / evaluate_durable": subjects["validate_case"].median_ns / ev,
        "raw_assert_retract / raw_post": fact / post,
        "evaluate_readings / raw_post": subjects["evaluate_readings"].median_ns / post,
        "evaluate_durable + to_dict / raw_post": subjects["evaluate_to_dict"].median_ns / post,
    }
    per_request = {1: subjects["evaluate_n1"].median_ns, 2: ev} | {
        n: subjects[f"evaluate_n{n}"].median_ns for n in REQUEST_COUNTS if n != 1
    }
    for n, ns in sorted(per_request.items()):
        ratios[f"evaluate_durable {n} request(s) / raw_post, per request"] = ns / n / post

    print()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in machine.items()))
    print(
        f"config: rounds={config['rounds']}, min batch time={config['min_time_s']} s, "
        f"latency calls per subject={config['latency_calls']}, timer overhead={extra['timer_overhead_ns']:.0f} ns "
        "(included in p50/p99, not subtracted)"
    )
    print()
    header = (
        f"{'subject':<58} {'µs/op':>9} {'ops/s':>11} {'x floor':>9} {'p50 µs':>9} {'p99 µs':>9} "
        f"{'p99.9 µs':>9} {'spread':>7} {'gc/1k':>6}"
    )
    print(header)
    print("-" * len(header))
    rows: dict[str, Any] = {}
    for s in subjects.values():
        median = s.median_ns
        spread = (max(s.round_ns) - min(s.round_ns)) / median
        gc_per_k = sum(s.gc_collections) * 1000 / len(s.samples_ns)
        row: dict[str, Any] = {
            "label": s.label,
            "batch": s.batch,
            "round_ns": s.round_ns,
            "median_ns": median,
            "ops_per_s": 1e9 / median,
            "x_floor": median / floor,
            "p50_ns": s.percentile_ns(50),
            "p99_ns": s.percentile_ns(99),
            "p999_ns": s.percentile_ns(99.9),
            "max_ns": float(max(s.samples_ns)),
            "latency_samples": len(s.samples_ns),
            "round_spread": spread,
            "gc_collections_in_latency_pass": s.gc_collections,
        }
        rows[s.key] = row
        print(
            f"{s.label:<58} {median / 1e3:>9.3f} {fmt_rate(row['ops_per_s']):>11} {row['x_floor']:>9.1f} "
            f"{row['p50_ns'] / 1e3:>9.2f} {row['p99_ns'] / 1e3:>9.2f} {row['p999_ns'] / 1e3:>9.2f} "
            f"{spread:>6.1%} {gc_per_k:>6.1f}"
        )
    print()
    requests = extra["requests_per_case"]
    print(
        f"determinations/s (durable):   {fmt_rate(1e9 / ev)} cases/s = {fmt_rate(requests * 1e9 / ev)} request "
        f"items/s ({requests} requests in the example case)"
    )
    print(f"determinations/s (reference): {fmt_rate(1e9 / subjects['evaluate_reference'].median_ns)} cases/s")
    print(
        f"durable_rules work per evaluation: {calls} DurableMatcher.match calls = {calls} assert_fact + {calls} "
        f"retract_fact, {extra['rules_fired_per_evaluation']} actions run; editions consulted: "
        + ", ".join(extra["editions_consulted"])
    )
    print()
    print("ratios (medians of the same run):")
    for name, value in ratios.items():
        print(f"  {name:<52} {value:>8.2f}")
    print()
    print(
        "µs/op: median over rounds of one batch each; ops/s = 1e6 / µs/op on one core; spread: (max - min) / median "
        "of the round values; gc/1k: garbage collections (all generations) per 1,000 individually timed calls."
    )
    print()
    print("per request (durable): " + "; ".join(f"{n}: {ns / n / 1e3:.1f} µs" for n, ns in sorted(per_request.items())))
    return {"machine": machine, "config": config, "extra": extra, "subjects": rows, "ratios": ratios}


# ---------------------------------------------------------------------------------------------- main


def build_subjects(case: dict[str, Any], case_path: Path) -> tuple[list[Subject], dict[str, Any]]:
    """Every subject, checked once; plus what one evaluation of the case asks of durable_rules."""
    durable = imr_policy.load()
    reference = imr_policy.load(engine="reference")
    expected = durable.evaluate(case)
    if reference.evaluate(case) != expected:
        raise SystemExit("the durable and reference engines disagree on the example case; not benchmarking")

    # The same policy set behind a recording matcher: counts the round trips without touching the engine.
    recorder = RecordingMatcher(DurableMatcher(durable.editions))
    counted = Engine(durable.editions, durable.policy_set, recorder, durable.profiles)
    if counted.evaluate(case) != expected:
        raise SystemExit("the recording engine gave a different determination; not benchmarking")
    consultations = [(edition, facts) for edition, facts, _ in recorder.calls]
    matcher = recorder.inner

    def matcher_only() -> object:
        return [matcher.match(edition, facts) for edition, facts in consultations]

    raw_post, raw_assert_retract = raw_durable_calls()
    n = len(consultations)
    subjects = [
        Subject("floor", "plain-Python floor (trivial function of the case dict)", lambda: plain_floor(case)),
        Subject("raw_post", "durable_rules Host.post, 1 event, minimal 3-rule ruleset", raw_post),
        Subject("raw_assert_retract", "durable_rules assert_fact+retract_fact, minimal ruleset", raw_assert_retract),
        Subject("matcher_only", f"DurableMatcher.match x{n} (the example's consultations)", matcher_only),
        Subject("validate_case", "imr_policy.validate_case(case dict)", lambda: imr_policy.validate_case(case)),
        Subject("evaluate_durable", "engine.evaluate(case dict), durable backend", lambda: durable.evaluate(case)),
        Subject(
            "evaluate_to_dict",
            "engine.evaluate(case dict).to_dict(), durable: every word read",
            lambda: durable.evaluate(case).to_dict(),
        ),
        Subject(
            "evaluate_reference", "engine.evaluate(case dict), reference backend", lambda: reference.evaluate(case)
        ),
    ]
    unstated = with_unstated(case)
    readings = sum(len(i.readings) for i in durable.evaluate(unstated).items)
    if reference.evaluate(unstated) != durable.evaluate(unstated):
        raise SystemExit("the durable and reference engines disagree on the case with unstated facts")
    subjects.append(
        Subject(
            "evaluate_readings",
            f"engine.evaluate, durable, unstated facts ({readings} readings)",
            lambda: durable.evaluate(unstated),
        )
    )
    for count in REQUEST_COUNTS:
        sized = with_requests(case, count)
        if reference.evaluate(sized) != durable.evaluate(sized):
            raise SystemExit(f"the durable and reference engines disagree on the {count}-request case")
        subjects.append(
            Subject(
                f"evaluate_n{count}",
                f"engine.evaluate, durable, {count} request(s)",
                lambda c=sized: durable.evaluate(c),
            )
        )
    extra = {
        "case": str(case_path),
        "requests_per_case": len(case["requests"]),
        "durable_matches_per_evaluation": n,
        "rules_fired_per_evaluation": sum(len(fired) for _, _, fired in recorder.calls),
        "editions_consulted": [edition.key for edition, _, _ in recorder.calls],
        "items": [
            {"request": i.request, "determination": i.determination, "approved": i.approved_quantity}
            for i in expected.items
        ],
    }
    return subjects, extra


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (a few seconds) to check that it works")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every figure to this JSON file")
    parser.add_argument("--case", type=Path, default=DEFAULT_CASE, help="the case file (YAML or JSON)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 7; 3 with --quick)")
    parser.add_argument("--min-time", type=float, help="seconds per timed batch (default 0.5; 0.08 with --quick)")
    parser.add_argument(
        "--latency-calls", type=int, help="individually timed calls per subject (default 20000; 2100 with --quick)"
    )
    parser.add_argument("--seed", type=int, default=20150710, help="seed of the per-round shuffle")
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 7)
    min_time = args.min_time or (0.08 if args.quick else 0.5)
    latency_calls = args.latency_calls or (2100 if args.quick else 20_000)
    if rounds < 1 or min_time <= 0 or latency_calls < rounds:
        parser.error("need --rounds >= 1, --min-time > 0 and at least one latency call per round")

    with args.case.open(encoding="utf-8") as fh:
        case = yaml.safe_load(fh)
    machine = machine_info()
    subjects, extra = build_subjects(case, args.case)
    extra["timer_overhead_ns"] = timer_overhead_ns()

    print(f"warming up and calibrating {len(subjects)} subjects ...", file=sys.stderr, flush=True)
    for s in subjects:
        time_batch(s.call, 200 if s.key.startswith("evaluate") else 2000)
        s.batch = calibrate(s.call, min_time)
    gc_before = gc_counts()
    started = time.perf_counter()
    run_rounds(subjects, rounds, latency_calls, args.seed)
    elapsed = time.perf_counter() - started
    extra["gc_collections_whole_run"] = [b - a for a, b in zip(gc_before, gc_counts(), strict=True)]
    extra["timed_seconds"] = round(elapsed, 1)
    extra["loadavg_at_end"] = loadavg()

    config = {"rounds": rounds, "min_time_s": min_time, "latency_calls": latency_calls, "seed": args.seed}
    results = report({s.key: s for s in subjects}, machine, extra, config)
    print(
        f"gc: enabled={machine['gc_enabled']}, threshold={machine['gc_threshold']}, collections during the timed "
        f"run (gen0, gen1, gen2) = {extra['gc_collections_whole_run']}; timed part took {elapsed:.0f} s; "
        f"load average at the end {' '.join(extra['loadavg_at_end'])}"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

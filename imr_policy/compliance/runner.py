"""Run a job over a corpus on every core, or on a Dask cluster: streamed, bounded, in input order.

A job is a small frozen dataclass (picklable) with two methods: `setup()` builds the per-process state
(the engines, loaded once per worker process and cached), and `run(state, entry)` turns one corpus
entry into one result. The runner

* cuts the stream of entries into chunks (so one task amortises the cost of shipping it),
* keeps at most `in_flight` chunks submitted and not yet consumed, so memory stays bounded however
  large the corpus is (the reader is only pulled as results are consumed),
* yields results in input order (the oldest chunk is always awaited first),
* runs worker processes started with `spawn`: each imports the package afresh and loads its own
  engine (durable_rules keeps process-global C state, so nothing is shared by forking).

* isolates a worker process that dies (a durable_rules crash, the OOM killer): the pool is rebuilt, the
  chunks that were in flight are run again one entry at a time in a process of their own, and the entry
  that kills its process again becomes the job's `crashed(entry, reason)` result (an engine error for
  that case); the run goes on with the rest of the corpus.

With one worker it runs in the calling process, which is what small corpora and tests want.
`workers=None` means every core this process may use.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import threading
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol, TypeVar

from imr_policy.compliance.corpus import Entry

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
DEFAULT_CHUNK = 64


class Job(Protocol[R_co]):
    @property
    def cache_key(self) -> str: ...

    def setup(self) -> Any: ...

    def run(self, state: Any, entry: Entry) -> R_co: ...

    def crashed(self, entry: Entry, reason: str) -> R_co:
        """The result for an entry whose worker process died while running it (never an approval)."""
        ...


_STATES: OrderedDict[str, Any] = OrderedDict()
_STATES_LOCK = threading.Lock()
MAX_STATES = 4  # a long-lived worker (Dask) serving job after job keeps the engines of the last few only


def _state(job: Job[Any]) -> Any:
    """The job's per-process state, built once (Dask runs tasks in threads, hence the lock) and kept in
    a small LRU, so a process that runs many jobs does not keep every engine it ever loaded."""
    key = job.cache_key
    with _STATES_LOCK:
        if key in _STATES:
            _STATES.move_to_end(key)
        else:
            _STATES[key] = job.setup()
            while len(_STATES) > MAX_STATES:
                _STATES.popitem(last=False)
        return _STATES[key]


def run_chunk(job: Job[R], chunk: Sequence[Entry]) -> list[R]:
    state = _state(job)
    return [job.run(state, entry) for entry in chunk]


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _chunks(entries: Iterable[Entry], size: int) -> Iterator[list[Entry]]:
    it = iter(entries)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def run(
    job: Job[R],
    entries: Iterable[Entry],
    *,
    workers: int | None = None,
    dask: str | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    in_flight: int | None = None,
) -> Iterator[R]:
    """Results of `job` for every entry, in input order. `dask` is a scheduler address (`tcp://host:8786`)."""
    if dask is not None:
        yield from _run_dask(job, entries, dask, chunk_size, in_flight)
        return
    count = default_workers() if workers is None else workers
    if count <= 1:
        state = _state(job)
        for entry in entries:
            yield job.run(state, entry)
        return
    limit = in_flight or 2 * count + 2
    context = multiprocessing.get_context("spawn")
    chunks = _chunks(entries, chunk_size)
    while True:
        pending: deque[tuple[list[Entry], Future[list[R]]]] = deque()
        broken = False
        pool = ProcessPoolExecutor(max_workers=count, mp_context=context)
        try:
            for chunk in chunks:
                pending.append((chunk, pool.submit(run_chunk, job, chunk)))
                if len(pending) >= limit:
                    done = _result(pending[0][1])
                    if done is None:
                        broken = True
                        break
                    pending.popleft()
                    yield from done
            while pending and not broken:
                done = _result(pending[0][1])
                if done is None:
                    broken = True
                    break
                pending.popleft()
                yield from done
        finally:
            pool.shutdown(wait=not broken, cancel_futures=True)
        if not broken:
            return
        # a worker died: which entry killed it is not known, so every chunk that did not finish is run
        # again one entry at a time, each alone in its process; then the rest of the corpus as before
        for chunk, future in pending:
            finished = _result(future) if future.done() and not future.cancelled() else None
            if finished is not None:
                yield from finished
            else:
                yield from _isolated(job, chunk, context)


def _result(future: Future[list[R]]) -> list[R] | None:
    """The chunk's results, or None when its worker process died (the pool is broken)."""
    try:
        return future.result()
    except BrokenProcessPool:
        return None


def _isolated(job: Job[R], chunk: Sequence[Entry], context: Any) -> Iterator[R]:
    """The chunk's results, each entry run alone in a one-process pool (rebuilt after a crash)."""
    pool = ProcessPoolExecutor(max_workers=1, mp_context=context)
    try:
        for entry in chunk:
            try:
                yield from pool.submit(run_chunk, job, [entry]).result()
            except BrokenProcessPool:
                pool.shutdown(wait=False, cancel_futures=True)
                pool = ProcessPoolExecutor(max_workers=1, mp_context=context)
                yield job.crashed(
                    entry, "the worker process deciding it died (a crash in the rules engine); no determination"
                )
    finally:
        pool.shutdown(wait=True)


def _run_dask(
    job: Job[R], entries: Iterable[Entry], address: str, chunk_size: int, in_flight: int | None
) -> Iterator[R]:
    from distributed import Client  # noqa: PLC0415 - an optional extra

    with Client(address, set_as_default=False) as client:  # type: ignore[no-untyped-call]
        threads = sum(client.nthreads().values()) or 1
        limit = in_flight or 2 * threads + 2
        pending: deque[Any] = deque()
        for chunk in _chunks(entries, chunk_size):
            pending.append(client.submit(run_chunk, job, chunk, pure=False))
            if len(pending) >= limit:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()


__all__ = ["Job", "default_workers", "run", "run_chunk"]

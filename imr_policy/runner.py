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
from typing import Any, Protocol, TypeVar

from imr_policy.corpus import Entry

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
DEFAULT_CHUNK = 64


class Job(Protocol[R_co]):
    @property
    def cache_key(self) -> str: ...

    def setup(self) -> Any: ...

    def run(self, state: Any, entry: Entry) -> R_co: ...


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
    with ProcessPoolExecutor(max_workers=count, mp_context=context) as pool:
        pending: deque[Future[list[R]]] = deque()
        for chunk in _chunks(entries, chunk_size):
            pending.append(pool.submit(run_chunk, job, chunk))
            if len(pending) >= limit:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()


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

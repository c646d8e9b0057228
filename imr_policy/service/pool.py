"""Worker processes that evaluate, one request at a time each; faults cost one request, never the pool.

A worker holds at most one request. When it dies (a segfault in durable_rules, the OOM killer) or
does not answer within `timeout` seconds (it is then killed), the request it held gets a 503 problem
and a new worker is started in the background; requests waiting for a worker, and those held by
other workers, are not touched. (`concurrent.futures.ProcessPoolExecutor` is no use here: one dead
worker breaks the whole executor and fails every pending future.)

All workers of a pool load the same snapshot of the rule files and must report its content hash; a
pool therefore answers with exactly one policy set. Reloading builds a new pool and retires the old
one after the requests it holds are answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imr_policy
from imr_policy.service import wire
from imr_policy.service.policyset import Backend, Snapshot

log = logging.getLogger("imr_policy.service")


class WorkerFault(Exception):
    """The worker holding a request died or hung; the request was not answered."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind  # "crashed" or "timeout"


class Overloaded(Exception):
    """No worker became free within the queue timeout, or too many requests are waiting."""


class StartError(Exception):
    """A worker could not load the policy set."""


@dataclass(frozen=True, slots=True)
class PoolSpec:
    snapshot: Snapshot
    content_hash: str  # what every worker must report having loaded
    backend: Backend = "durable"
    size: int = 2
    timeout: float = 10.0  # seconds one request may take in a worker
    queue_timeout: float = 10.0  # seconds a request may wait for a free worker
    max_queue: int = 1024  # requests that may wait for a worker at once; more get 503 at once
    start_timeout: float = 60.0
    redacted: bool = True


@dataclass(frozen=True, slots=True)
class Reply:
    header: dict[str, Any]
    sections: list[bytes]


class _Worker:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.dead = False
        self.timed_out = False

    async def exchange(self, frame: bytes) -> tuple[dict[str, Any], list[bytes]]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(frame)
        await self.proc.stdin.drain()
        prefix = await self.proc.stdout.readexactly(wire.PREFIX)
        payload = await self.proc.stdout.readexactly(wire.length(prefix))
        return wire.decode(payload)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "stopped"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


class Pool:
    """A fixed number of worker processes for one policy set."""

    def __init__(self, spec: PoolSpec, *, on_restart: Callable[[str], None] | None = None) -> None:
        self.spec = spec
        self._on_restart = on_restart  # called with "crashed" or "timeout" when a worker is to be replaced
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._workers: set[_Worker] = set()
        self._ids = itertools.count(1)
        self._waiting = 0
        self._held = 0
        self._closing = False
        self._drained = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start every worker; raise StartError (and stop them all) if any cannot load the policy set."""
        results = await asyncio.gather(*(self._spawn() for _ in range(self.spec.size)), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        for r in results:
            if isinstance(r, _Worker):
                self._adopt(r)
        if failures:
            await self.close(drain=False)
            raise StartError(str(failures[0])) from failures[0]

    async def _spawn(self) -> _Worker:
        env = dict(os.environ)
        # the workers run the code the server runs, installed or not
        package_parent = str(Path(imr_policy.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
        args = [
            "-m",
            "imr_policy.service.worker",
            "--snapshot",
            str(self.spec.snapshot.root),
            "--policy-set-id",
            self.spec.snapshot.policy_set_id,
            "--engine",
            self.spec.backend,
        ]
        if not self.spec.redacted:
            args.append("--unredacted")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env
        )
        worker = _Worker(proc)
        try:
            assert proc.stdout is not None
            prefix = await asyncio.wait_for(proc.stdout.readexactly(wire.PREFIX), self.spec.start_timeout)
            hello, _ = wire.decode(await proc.stdout.readexactly(wire.length(prefix)))
        except (TimeoutError, asyncio.IncompleteReadError, wire.ProtocolError) as exc:
            worker.kill()
            await proc.wait()
            raise StartError(f"a worker did not start: it {_describe_exit(proc.returncode)}") from exc
        if not hello.get("ready"):
            await proc.wait()
            raise StartError(str(hello.get("error") or "a worker could not load the policy set"))
        if hello.get("content_hash") != self.spec.content_hash:
            worker.kill()
            await proc.wait()
            raise StartError(
                f"a worker loaded policy set {hello.get('content_hash')}, not {self.spec.content_hash}; "
                "the snapshot changed"
            )
        return worker

    def _adopt(self, worker: _Worker) -> None:
        self._workers.add(worker)
        self._idle.put_nowait(worker)
        self._background(self._watch(worker))

    def _background(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch(self, worker: _Worker) -> None:
        code = await worker.proc.wait()
        worker.dead = True
        self._workers.discard(worker)
        if self._closing:
            return
        log.warning("worker %d %s; starting a new one", worker.pid, _describe_exit(code))
        if self._on_restart is not None:
            self._on_restart("timeout" if worker.timed_out else "crashed")
        await self._replace()

    async def _replace(self) -> None:
        delay = 0.5
        while not self._closing:
            try:
                worker = await self._spawn()
            except (StartError, OSError) as exc:
                log.error("a replacement worker did not start (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            if self._closing:
                worker.kill()
                await worker.proc.wait()
                return
            self._adopt(worker)
            return

    async def close(self, *, drain: bool = True) -> None:
        """Stop taking requests; with `drain`, answer those already held or waiting first; stop the workers."""
        self._closing = True
        if drain and (self._held or self._waiting):
            await self._drained.wait()
        for worker in list(self._workers):
            if worker.proc.stdin is not None:
                worker.proc.stdin.close()  # a worker exits when its input ends
        procs = [w.proc for w in self._workers]
        if procs:
            _, pending = await asyncio.wait([asyncio.ensure_future(p.wait()) for p in procs], timeout=5)
            for worker in list(self._workers):
                if worker.proc.returncode is None:
                    worker.kill()
            for waiting in pending:
                await waiting
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # ------------------------------------------------------------------ requests

    @property
    def waiting(self) -> int:
        """Requests waiting for a free worker."""
        return self._waiting

    @property
    def live_workers(self) -> int:
        return sum(1 for w in self._workers if not w.dead)

    async def call(self, op: str, body: bytes, options: dict[str, Any] | None = None) -> Reply:
        """Send one request to a free worker and return its reply (`options` go into the frame's header).

        Raises Overloaded when no worker is free in time, WorkerFault when the worker died or hung."""
        if self._waiting >= self.spec.max_queue:
            raise Overloaded(f"{self._waiting} requests are already waiting for a worker")
        self._waiting += 1
        try:
            worker = await asyncio.wait_for(self._free_worker(), self.spec.queue_timeout)
        except TimeoutError:
            self._waiting -= 1
            self._check_drained()
            raise Overloaded(f"no worker became free within {self.spec.queue_timeout:g} s") from None
        except BaseException:
            self._waiting -= 1
            self._check_drained()
            raise
        self._held += 1  # before `_waiting` drops, so a closing pool never looks drained in between
        self._waiting -= 1
        # The exchange owns the worker until the worker answers or is replaced, even if the client goes
        # away and this request is cancelled: a worker must never be handed on with an answer unread.
        task = asyncio.ensure_future(self._exchange(worker, op, body, options or {}))
        task.add_done_callback(self._released)
        return await asyncio.shield(task)

    async def _free_worker(self) -> _Worker:
        while True:
            worker = await self._idle.get()
            if not worker.dead:
                return worker

    def _released(self, task: asyncio.Task[Reply]) -> None:
        self._held -= 1
        self._check_drained()
        if not task.cancelled():
            task.exception()  # retrieved here, so a request that went away leaves no "never retrieved" noise

    def _check_drained(self) -> None:
        if self._closing and not self._held and not self._waiting:
            self._drained.set()

    async def _exchange(self, worker: _Worker, op: str, body: bytes, options: dict[str, Any]) -> Reply:
        ident = next(self._ids)
        frame = wire.encode({**options, "id": ident, "op": op}, body)
        try:
            header, sections = await asyncio.wait_for(worker.exchange(frame), self.spec.timeout)
        except TimeoutError:
            worker.timed_out = True
            worker.kill()
            log.warning("worker %d did not answer within %g s; killed", worker.pid, self.spec.timeout)
            raise WorkerFault("timeout", f"no answer within {self.spec.timeout:g} s") from None
        except (asyncio.IncompleteReadError, ConnectionError, wire.ProtocolError) as exc:
            worker.kill()
            code = await worker.proc.wait()
            log.warning("worker %d %s while holding a request", worker.pid, _describe_exit(code))
            raise WorkerFault("crashed", f"the worker {_describe_exit(code)}") from exc
        if header.get("id") != ident:
            worker.kill()
            raise WorkerFault("crashed", "the worker answered another request")
        self._idle.put_nowait(worker)
        return Reply(header, sections)

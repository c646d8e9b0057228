"""`imr-policy serve`: the HTTP service (docs/service.md); needs the `service` extra."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import re
import signal
import socket
import sqlite3
import sys
from pathlib import Path
from typing import Any, Literal

from imr_policy.cli import render
from imr_policy.cli.common import PolicySource, announce, files_hash, policy_source
from imr_policy.evaluate import with_shipped_profiles
from imr_policy.loading.validate import load_editions

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
TOKEN_ENV = "IMR_POLICY_ADMIN_TOKEN"
OTEL_ENV = "IMR_POLICY_OTEL"  # 1/true/yes/on: as --otel


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "serve",
        help="serve determinations over HTTP (needs the `service` extra)",
        description="Serve determinations over HTTP: POST /v1/determinations, POST /v1/validate, GET /v1/policies, "
        f"POST /v1/admin/reload (or SIGHUP), GET /healthz, GET /readyz, GET /openapi.json. If {TOKEN_ENV} is set, "
        "the reload endpoint needs `Authorization: Bearer <token>`.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on; 0 picks a free one (default: 8080)")
    p.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 2,
        help="evaluation worker processes (default: the number of CPUs)",
    )
    p.add_argument(
        "--policies",
        type=Path,
        help="a directory of rule packs (default: the checkout's policies/, else the installed packs)",
    )
    p.add_argument("--engine", choices=("durable", "reference"), default="durable")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds a worker may take for one case (default: 10)")
    p.add_argument(
        "--max-body-bytes", type=int, default=1024 * 1024, help="larger request bodies get 413 (default: 1 MiB)"
    )
    p.add_argument(
        "--max-batch-bytes",
        type=int,
        default=16 * 1024 * 1024,
        help="larger bodies of POST /v1/determinations:batch get 413 (default: 16 MiB)",
    )
    p.add_argument(
        "--max-batch-cases",
        type=int,
        default=1000,
        help="batches of more cases (lines) get 413 (default: 1000)",
    )
    p.add_argument(
        "--audit-log",
        type=Path,
        help="the decision log; SQLite for .sqlite/.sqlite3/.db, else JSON Lines (default: decisions.jsonl in "
        "$XDG_STATE_HOME/imr-policy, else ~/.local/state/imr-policy, created owner-only)",
    )
    p.add_argument("--audit-format", choices=("jsonl", "sqlite"), help="override the format chosen by file name")
    p.add_argument(
        "--audit-fsync",
        type=_fsync_policy,
        default=("always", 0.0),
        metavar="always|never|<N>ms",
        help="when the decision log is synced to disk: before each answer (always, the default), by group "
        "commit every N ms (the answer waits for it), or never (the operating system decides)",
    )
    p.add_argument(
        "--audit-unredacted",
        action="store_true",
        help="log cases whole, identifying fields included (default: redacted)",
    )
    p.add_argument("--no-access-log", action="store_true", help="do not log every HTTP request")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    p.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="server messages as text or one JSON object a line (the access log is JSON either way)",
    )
    p.add_argument(
        "--otel",
        action="store_true",
        help=f"an OpenTelemetry span per request (needs the `otel` extra; also {OTEL_ENV}=1); exporter from "
        "OTEL_TRACES_EXPORTER: otlp (default), console, none",
    )
    p.set_defaults(func=run)


def _fsync_policy(text: str) -> tuple[str, float]:
    if text in ("always", "never"):
        return text, 0.0
    m = re.fullmatch(r"([1-9][0-9]{0,5})ms", text)
    if m is None:
        raise argparse.ArgumentTypeError(
            f"expected `always`, `never` or a number of milliseconds like `20ms`, got {text!r}"
        )
    return "interval", int(m.group(1)) / 1000


def _is_loopback(host: str) -> bool:
    """True when every address `host` names is a loopback address."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(found) and all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in found)


def _check_log(path: Path, kind: str | None, sync: str) -> str | None:
    """Why the decision log cannot be written, or None: opened (and created) once, before anything starts."""
    from imr_policy.compliance import audit  # noqa: PLC0415

    try:
        audit.open_log(path, kind=kind, sync=sync).close()  # type: ignore[arg-type]
    except (OSError, sqlite3.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return f"cannot write the decision log {path}: {reason}"
    return None


def _stop_quietly(signum: int, _: Any) -> None:
    """SIGTERM/SIGINT after uvicorn has shut down cleanly (it raises the signal again): exit 0, not 143."""


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn  # noqa: PLC0415  (an optional extra: import it only when serving)

        from imr_policy.service.app import ServiceConfig, create_app  # noqa: PLC0415
    except ImportError as exc:
        print(
            f"imr-policy: the HTTP service needs the `service` extra ({exc.name} is missing): "
            "pip install 'imr-policy[service]'",
            file=sys.stderr,
        )
        return EXIT_USAGE
    tracing = _tracer_provider(args)
    if isinstance(tracing, int):
        return tracing
    source = _checked_policies(args)
    if isinstance(source, int):
        return source
    token = os.environ.get(TOKEN_ENV) or None
    if token is None and not _is_loopback(args.host):
        print(
            f"imr-policy: refusing to listen on {args.host}, which is not a loopback address, without an admin "
            f"token: set {TOKEN_ENV} (and put a reverse proxy with TLS and authentication in front)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    log = _decision_log(args)
    if isinstance(log, int):
        return log
    config = _config(ServiceConfig, args, source, log, token, tracing)
    try:
        sock = socket.create_server(
            (args.host, args.port), family=socket.AF_INET6 if ":" in args.host else socket.AF_INET
        )
    except OSError as exc:
        print(f"imr-policy: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    port = sock.getsockname()[1]
    _log_to_stderr(args)
    host = f"[{args.host}]" if ":" in args.host else args.host

    def started() -> None:  # the policy set is loaded, every worker is up and the log is open
        workers = render.count(args.workers, "worker")
        print(f"imr-policy: serving on http://{host}:{port} with {workers}", flush=True)

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config, on_started=started),
            lifespan="on",
            log_level=args.log_level,
            log_config=None,  # the handler of _log_to_stderr, for uvicorn's messages too
            access_log=False,  # ours: JSON, with latency and decision id (imr_policy.access)
            timeout_graceful_shutdown=30,
        )
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop_quietly)  # uvicorn restores this handler before raising the signal again
    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file size limit: a write error (503), not death
    try:
        server.run(sockets=[sock])
    finally:
        if tracing is not None and tracing[1]:  # ours: flush the spans not yet exported
            tracing[0].shutdown()
    return EXIT_OK if server.started else EXIT_INVALID


def _config(
    make: Any,
    args: argparse.Namespace,
    source: PolicySource,
    log: tuple[Path, Any, float],
    token: str | None,
    tracing: tuple[Any, bool] | None,
) -> Any:
    """The ServiceConfig (`make`) of the options."""
    log_path, sync, interval = log
    return make(
        audit_log=log_path,
        policies=source.load_path,
        backend=args.engine,
        workers=args.workers,
        timeout=args.timeout,
        max_body_bytes=args.max_body_bytes,
        max_batch_bytes=args.max_batch_bytes,
        max_batch_cases=args.max_batch_cases,
        audit_format=args.audit_format,
        redacted=not args.audit_unredacted,
        admin_token=token,
        reload_on_sighup=True,
        audit_sync=sync,
        audit_sync_interval=interval or 0.05,
        access_log=not args.no_access_log,
        otel=tracing is not None,
        tracer_provider=tracing[0] if tracing else None,
    )


def _tracer_provider(args: argparse.Namespace) -> tuple[Any, bool] | int | None:
    """With --otel (or IMR_POLICY_OTEL=1): (the TracerProvider, whether serve owns it); None without; the exit
    code when the `otel` extra is missing or OTEL_TRACES_EXPORTER names an exporter serve does not know."""
    if not (args.otel or os.environ.get(OTEL_ENV, "").strip().lower() in ("1", "true", "yes", "on")):
        return None
    try:
        from imr_policy.service import tracing  # noqa: PLC0415  (an optional extra: imported only when on)

        provider: tuple[Any, bool] = tracing.configure()
    except ImportError as exc:
        print(
            f"imr-policy: OpenTelemetry spans need the `otel` extra ({exc.name} is missing): "
            "pip install 'imr-policy[otel]'",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except ValueError as exc:
        print(f"imr-policy: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return provider


def _checked_policies(args: argparse.Namespace) -> PolicySource | int:
    """The policy set to serve, announced; or the exit code when the options or the rule files are not valid."""
    if (
        args.workers < 1
        or args.timeout <= 0
        or min(args.max_body_bytes, args.max_batch_bytes, args.max_batch_cases) < 1
    ):
        print(
            "imr-policy: --workers, --timeout, --max-body-bytes, --max-batch-bytes and --max-batch-cases must be "
            "positive",
            file=sys.stderr,
        )
        return EXIT_USAGE
    source = policy_source(args.policies)
    root = source.paths[0]
    if not root.exists():
        print(f"imr-policy: no such file or directory: {root}", file=sys.stderr)
        return EXIT_USAGE
    # the server validates again at start-up; this is for messages with file:line:col before anything starts
    result = with_shipped_profiles(load_editions([root], display_root=root if root.is_dir() else root.parent))
    if not result.ok:
        print(render.diagnostics_text(result.diagnostics), file=sys.stderr)
        print("imr-policy: the rule files are not valid; not serving", file=sys.stderr)
        return EXIT_INVALID
    announce(source, files_hash(list(source.paths)))
    return source


def _decision_log(args: argparse.Namespace) -> tuple[Path, Literal["always", "interval", "never"], float] | int:
    """(the decision log's path, its sync policy, the group-commit interval), the log opened once to be sure
    it can be written; or the exit code when it cannot."""
    from imr_policy.compliance import audit  # noqa: PLC0415

    try:
        log_path = args.audit_log or audit.default_log_path()
    except OSError as exc:
        print(f"imr-policy: cannot create the decision log's directory: {exc}", file=sys.stderr)
        return EXIT_INVALID
    sync, interval = args.audit_fsync
    if (problem := _check_log(log_path, args.audit_format, sync)) is not None:
        print(f"imr-policy: {problem}; not serving", file=sys.stderr)
        return EXIT_INVALID
    return log_path, sync, interval


def _log_to_stderr(args: argparse.Namespace) -> None:
    """Server messages to stderr, as text or JSON lines; the access log at INFO (it was asked for)."""
    handler = logging.StreamHandler(sys.stderr)
    if args.log_format == "json":
        from imr_policy.service.observe import JsonFormatter  # noqa: PLC0415

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=args.log_level.upper(), handlers=[handler], force=True)
    logging.getLogger("imr_policy.access").setLevel(logging.INFO)  # asked for by leaving the access log on

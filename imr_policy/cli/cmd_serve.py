"""`imr-policy serve`: the HTTP service (docs/service.md); needs the `service` extra."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any

from imr_policy.cli import render
from imr_policy.evaluate import with_shipped_profiles
from imr_policy.resources import policies_dir
from imr_policy.validate import load_editions

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
TOKEN_ENV = "IMR_POLICY_ADMIN_TOKEN"


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
    p.add_argument("--policies", type=Path, help="a directory of rule packs (default: the shipped packs)")
    p.add_argument("--engine", choices=("durable", "reference"), default="durable")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds a worker may take for one case (default: 10)")
    p.add_argument(
        "--max-body-bytes", type=int, default=1024 * 1024, help="larger request bodies get 413 (default: 1 MiB)"
    )
    p.add_argument(
        "--audit-log",
        type=Path,
        default=Path("imr-policy-audit.jsonl"),
        help="the decision log; SQLite for .sqlite/.sqlite3/.db, else JSON Lines (default: imr-policy-audit.jsonl)",
    )
    p.add_argument("--audit-format", choices=("jsonl", "sqlite"), help="override the format chosen by file name")
    p.add_argument(
        "--audit-unredacted",
        action="store_true",
        help="log cases whole, identifying fields included (default: redacted)",
    )
    p.add_argument("--no-access-log", action="store_true", help="do not log every HTTP request")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    p.set_defaults(func=run)


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
    if args.workers < 1 or args.timeout <= 0 or args.max_body_bytes < 1:
        print("imr-policy: --workers, --timeout and --max-body-bytes must be positive", file=sys.stderr)
        return EXIT_USAGE
    root = args.policies or policies_dir()
    if not root.exists():
        print(f"imr-policy: no such file or directory: {root}", file=sys.stderr)
        return EXIT_USAGE
    # the server validates again at start-up; this is for messages with file:line:col before anything starts
    result = with_shipped_profiles(load_editions([root], display_root=root if root.is_dir() else root.parent))
    if not result.ok:
        print(render.diagnostics_text(result.diagnostics), file=sys.stderr)
        print("imr-policy: the rule files are not valid; not serving", file=sys.stderr)
        return EXIT_INVALID

    config = ServiceConfig(
        audit_log=args.audit_log,
        policies=args.policies,
        backend=args.engine,
        workers=args.workers,
        timeout=args.timeout,
        max_body_bytes=args.max_body_bytes,
        audit_format=args.audit_format,
        redacted=not args.audit_unredacted,
        admin_token=os.environ.get(TOKEN_ENV) or None,
        reload_on_sighup=True,
    )
    try:
        sock = socket.create_server(
            (args.host, args.port), family=socket.AF_INET6 if ":" in args.host else socket.AF_INET
        )
    except OSError as exc:
        print(f"imr-policy: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    port = sock.getsockname()[1]
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            lifespan="on",
            log_level=args.log_level,
            access_log=not args.no_access_log,
            timeout_graceful_shutdown=30,
        )
    )
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"imr-policy: serving on http://{host}:{port} with {args.workers} workers", flush=True)
    server.run(sockets=[sock])
    return EXIT_OK if server.started else EXIT_INVALID

"""RFC 9457 problem documents (`application/problem+json`).

Every error the service returns is one of the types below; `docs/service.md` documents each. Bad
input carries `errors`: one entry per diagnostic, with its stable `code`, the JSON `path` of the bad
field (and the same place as a JSON Pointer, RFC 6901), a message and a hint.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from imr_policy.model.diagnostics import Diagnostic

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://imr-policy.dev/problems/"

# type -> (status, title)
TYPES: dict[str, tuple[int, str]] = {
    "malformed-json": (400, "the request body is not a JSON document"),
    "invalid-parameter": (400, "a query parameter is unknown or has a value that is not allowed"),
    "unauthorized": (401, "this endpoint needs the admin token"),
    "admin-disabled": (403, "the admin endpoints are off: no admin token is configured"),
    "not-found": (404, "no such endpoint"),
    "method-not-allowed": (405, "this endpoint does not accept this method"),
    "not-acceptable": (406, "this endpoint cannot answer in any media type the request accepts"),
    "invalid-policies": (409, "the rule files are not valid; the policy set in use is unchanged"),
    "body-too-large": (413, "the request body is too large"),
    "unsupported-media-type": (415, "the request body must be JSON"),
    "invalid-case": (422, "the case is not valid; no determination was made"),
    "engine-error": (500, "the engine could not decide this case; no determination was made"),
    "internal-error": (500, "the service failed; no determination was made"),
    "worker-crashed": (503, "the engine process stopped while deciding this case; no determination was made"),
    "evaluation-timeout": (503, "the engine took too long to decide this case; no determination was made"),
    "overloaded": (503, "the service is busy; retry later"),
    "not-ready": (503, "the service is not ready"),
    "audit-unavailable": (503, "the decision could not be written to the decision log; no determination was made"),
}


class Problem(Exception):
    """An error response: raise it anywhere in a request handler."""

    def __init__(
        self,
        kind: str,
        detail: str,
        errors: Iterable[dict[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if kind not in TYPES:
            raise ValueError(f"unknown problem type {kind!r}")
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.errors = tuple(errors)
        self.headers = dict(headers or {})

    @property
    def status(self) -> int:
        return TYPES[self.kind][0]

    def to_dict(self) -> dict[str, Any]:
        status, title = TYPES[self.kind]
        out: dict[str, Any] = {"type": TYPE_BASE + self.kind, "title": title, "status": status, "detail": self.detail}
        if self.errors:
            out["errors"] = list(self.errors)
        return out

    def body(self) -> bytes:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":")).encode()


_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]")


def json_pointer(path: str) -> str:
    """`$.requests[0].quantity` -> `/requests/0/quantity` (RFC 6901); `$` -> the empty pointer."""
    if not path.startswith("$"):
        return ""
    parts: list[str] = []
    at = 1
    while at < len(path):
        m = _STEP.match(path, at)
        if m is None:  # not a path this package writes: point at the whole document rather than guess
            return ""
        name, index, quoted = m.groups()
        token = name if name is not None else index if index is not None else re.sub(r"\\(.)", r"\1", quoted)
        parts.append(token.replace("~", "~0").replace("/", "~1"))
        at = m.end()
    return "".join("/" + p for p in parts)


def diagnostic_json(d: Diagnostic) -> dict[str, Any]:
    out = d.to_dict()
    out["pointer"] = json_pointer(d.path)
    return out


def diagnostics_json(diagnostics: Iterable[Diagnostic]) -> tuple[dict[str, Any], ...]:
    return tuple(diagnostic_json(d) for d in diagnostics)


def count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"

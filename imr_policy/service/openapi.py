"""The OpenAPI 3.1 document of the service, built from the JSON Schemas in `schemas/`.

The request body of `/v1/determinations`, `/v1/letters` and `/v1/validate` is `schemas/case.schema.json` and the
answer of `/v1/determinations` is `schemas/decision.schema.json`, copied in at start-up (OpenAPI 3.1
schemas are JSON Schema 2020-12), so the document cannot drift from what the service checks. Their
`$defs` move to `components/schemas` (`Case.date`, `Determination.item`, ...) and the `$ref`s follow,
because tools resolve `#/...` against the OpenAPI document, not against the embedded schema.
"""

from __future__ import annotations

import copy
from typing import Any

from imr_policy.engine.combine import PROVENANCE_ORDER
from imr_policy.loading.resources import schema
from imr_policy.service.problems import MEDIA_TYPE, TYPE_BASE, TYPES

DECISION_ID = "Imr-Decision-Id"
POLICY_SET = "Imr-Policy-Set"
MIN_PROVENANCE = "min_provenance"
CHECK = "check"
LETTER_COMPLETE = "Imr-Letter-Complete"
REQUEST_ID = "X-Request-Id"
TRACEPARENT = "traceparent"


def _hoist(name: str, title: str, components: dict[str, Any]) -> None:
    """Put schema `name` into `components` as `title`, its `$defs` as `title.<def>`."""
    doc = copy.deepcopy(schema(name))
    defs = doc.pop("$defs", {})
    for key in ("$schema", "$id"):
        doc.pop(key, None)

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: (f"#/components/schemas/{title}.{v.removeprefix('#/$defs/')}" if k == "$ref" else fix(v))
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [fix(v) for v in node]
        return node

    components[title] = fix(doc)
    for key, sub in defs.items():
        components[f"{title}.{key}"] = fix(sub)


def _ref(title: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{title}"}


_DIAGNOSTIC = {
    "type": "object",
    "description": "one problem: a stable code (docs/diagnostics.md), where it is and what to do",
    "required": ["code", "severity", "message", "path", "pointer"],
    "properties": {
        "code": {"type": "string", "examples": ["case.type"]},
        "severity": {"type": "string", "enum": ["error", "warning"]},
        "message": {"type": "string"},
        "path": {"type": "string", "description": "JSON path of the bad value", "examples": ["$.requests[0].quantity"]},
        "pointer": {"type": "string", "description": "the same place as a JSON Pointer (RFC 6901)"},
        "file": {"type": "string"},
        "line": {"type": "integer", "minimum": 1},
        "column": {"type": "integer", "minimum": 1},
        "hint": {"type": "string"},
        "parameter": {"type": "string", "description": "the query parameter at fault (`request.parameter`)"},
    },
}

_PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details; `type` names one of the problems in docs/service.md",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "enum": [TYPE_BASE + k for k in TYPES]},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": _ref("Diagnostic")},
    },
}

_POLICY_SET = {
    "type": "object",
    "required": ["id", "content_hash"],
    "properties": {"id": {"type": "string"}, "content_hash": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"}},
}

_DATE = {"type": "string", "format": "date"}

_POLICIES = {
    "type": "object",
    "required": ["policy_set", "loaded_at", "editions"],
    "properties": {
        "policy_set": _ref("PolicySet"),
        "loaded_at": {"type": "string", "format": "date-time"},
        "editions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "guideline",
                    "guideline_title",
                    "edition",
                    "edition_title",
                    "tier",
                    "jurisdictions",
                    "effective_from",
                    "effective_to",
                    "file",
                    "sha256",
                ],
                "properties": {
                    "guideline": {"type": "string"},
                    "guideline_title": {"type": "string"},
                    "edition": {"type": "string"},
                    "edition_title": {"type": "string"},
                    "tier": {"type": "string"},
                    "jurisdictions": {"type": "array", "items": {"type": "string"}},
                    "effective_from": _DATE,
                    "effective_to": {"anyOf": [_DATE, {"type": "null"}]},
                    "file": {"type": "string"},
                    "sha256": {"type": "string"},
                },
            },
        },
    },
}

_VALIDATION = {
    "type": "object",
    "required": ["valid", "diagnostics"],
    "properties": {"valid": {"type": "boolean"}, "diagnostics": {"type": "array", "items": _ref("Diagnostic")}},
}

_TEXT = {"type": "string"}
_OPTIONAL_TEXT = {"anyOf": [_TEXT, {"type": "null"}]}

_LETTER = {
    "type": "object",
    "description": "the UR determination letter (imr_policy.Letter.to_dict()): for each request, every "
    "element the procedural pack in force lists, its text or why it is missing",
    "required": ["case_id", "jurisdiction", "policy_set", "engine_version", "complete", "items"],
    "additionalProperties": False,
    "properties": {
        "case_id": _TEXT,
        "jurisdiction": _TEXT,
        "policy_set": _ref("PolicySet"),
        "engine_version": _TEXT,
        "complete": {"type": "boolean", "description": "every required element of every item is filled"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["request", "treatment", "determination", "procedure", "source", "missing", "sections"],
                "additionalProperties": False,
                "properties": {
                    "request": _TEXT,
                    "treatment": _TEXT,
                    "determination": {"type": "string", "enum": ["certify", "modify", "non_certify", "pend"]},
                    "procedure": {**_OPTIONAL_TEXT, "description": "the procedural pack whose list was used"},
                    "source": {**_OPTIONAL_TEXT, "description": "that list's source"},
                    "missing": {"type": "array", "items": _TEXT, "description": "the ids of the missing elements"},
                    "reason": {**_TEXT, "description": "why the item has no list (certified, or no pack)"},
                    "sections": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["id", "says", "text"],
                            "additionalProperties": False,
                            "properties": {
                                "id": _TEXT,
                                "says": _TEXT,
                                "text": {**_OPTIONAL_TEXT, "description": "null: missing"},
                                "from": {**_TEXT, "description": "the case or determination field it comes from"},
                                "missing": {**_TEXT, "description": "why it is missing"},
                            },
                        },
                    },
                },
            },
        },
    },
}

_LETTER_CHECK = {
    "type": "object",
    "description": "what `imr-policy letter --check` reports: each required element the letter lacks",
    "required": ["case_id", "complete", "missing"],
    "additionalProperties": False,
    "properties": {
        "case_id": _TEXT,
        "complete": {"type": "boolean"},
        "missing": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["request", "element", "says", "why"],
                "additionalProperties": False,
                "properties": {"request": _TEXT, "element": _TEXT, "says": _TEXT, "why": _OPTIONAL_TEXT},
            },
        },
    },
}

_HEALTH = {"type": "object", "required": ["status"], "properties": {"status": {"type": "string", "const": "ok"}}}

_READY = {
    "type": "object",
    "required": ["status", "policy_set", "workers"],
    "properties": {
        "status": {"type": "string", "const": "ready"},
        "policy_set": _ref("PolicySet"),
        "workers": {
            "type": "object",
            "required": ["live", "size"],
            "properties": {"live": {"type": "integer"}, "size": {"type": "integer"}},
        },
    },
}

_RELOAD = {
    "type": "object",
    "required": ["changed", "policy_set", "previous"],
    "properties": {"changed": {"type": "boolean"}, "policy_set": _ref("PolicySet"), "previous": _ref("PolicySet")},
}


def _json(title: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(title)}}}


def _problems(*kinds: str) -> dict[str, Any]:
    by_status: dict[int, list[str]] = {}
    for kind in kinds:
        by_status.setdefault(TYPES[kind][0], []).append(kind)
    out: dict[str, Any] = {}
    for status, names in sorted(by_status.items()):
        response: dict[str, Any] = {
            "description": "; ".join(f"`{n}`: {TYPES[n][1]}" for n in names),
            "content": {MEDIA_TYPE: {"schema": _ref("Problem")}},
        }
        if status == 503:
            response["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
        out[str(status)] = response
    return out


def _case_body(description: str) -> dict[str, Any]:
    return {"required": True, "description": description, "content": {"application/json": {"schema": _ref("Case")}}}


_BODY_PROBLEMS = ("malformed-json", "body-too-large", "unsupported-media-type")
_WORKER_PROBLEMS = ("worker-crashed", "evaluation-timeout", "overloaded", "not-ready", "internal-error")


def _letters(floor: dict[str, Any], tracing: list[dict[str, Any]], answered_by: dict[str, Any]) -> dict[str, Any]:
    """`POST /v1/letters`: its media types are chosen by `Accept` (not a parameter: OpenAPI ignores one)."""
    check = {
        "name": CHECK,
        "in": "query",
        "required": False,
        "description": "`true`: answer only whether the letter is complete and each required element it lacks "
        "(`imr-policy letter --check`), as JSON or (`Accept: text/plain`) text; nothing is logged. "
        "Absent or `false`: the letter.",
        "schema": {"type": "boolean"},
    }
    text = {"schema": {"type": "string"}}
    written = {
        "description": "the letter (`Accept`: `application/json`, the default; `text/plain`; `text/html`), or with "
        "`check=true` its completeness (`application/json` or `text/plain`). A letter's decision is in the "
        "decision log under the decision id",
        "content": {
            "application/json": {"schema": {"oneOf": [_ref("Letter"), _ref("LetterCheck")]}},
            "text/plain": text,
            "text/html": text,
        },
        "headers": {
            DECISION_ID: {
                "description": "the id of the letter's decision in the decision log (not with `check=true`)",
                "schema": {"type": "string"},
            },
            LETTER_COMPLETE: {
                "description": "`true` when every required element is filled",
                "schema": {"type": "string", "enum": ["true", "false"]},
            },
            **answered_by,
        },
    }
    return {
        "post": {
            "operationId": "writeLetter",
            "summary": "decide a case and write its UR determination letter (or check the letter's completeness)",
            "description": "The letter `imr-policy letter` and `imr_policy.write_letter` write, from the same "
            "determination `POST /v1/determinations` gives. An `Accept` that names none of the media types is a 406.",
            "parameters": [check, floor, *tracing],
            "requestBody": _case_body("a case per schemas/case.schema.json"),
            "responses": {
                "200": written,
                **_problems(
                    *_BODY_PROBLEMS,
                    "invalid-parameter",
                    "not-acceptable",
                    "invalid-case",
                    "engine-error",
                    "audit-unavailable",
                    *_WORKER_PROBLEMS,
                ),
            },
        }
    }


def _components() -> dict[str, Any]:
    """The schemas of the document: the case and determination schemas hoisted, and the service's own."""
    components: dict[str, Any] = {}
    _hoist("case", "Case", components)
    _hoist("decision", "Determination", components)
    components.update(
        Diagnostic=_DIAGNOSTIC,
        Problem=_PROBLEM,
        PolicySet=_POLICY_SET,
        Policies=_POLICIES,
        Validation=_VALIDATION,
        Health=_HEALTH,
        Readiness=_READY,
        Reload=_RELOAD,
        Letter=_LETTER,
        LetterCheck=_LETTER_CHECK,
    )
    return components


def _floor_parameter() -> dict[str, Any]:
    return {
        "name": MIN_PROVENANCE,
        "in": "query",
        "required": False,
        "description": "the provenance floor: a decision resting on a number graded weaker than this pends, "
        "saying so (V > V-seed > V-2nd > UNVERIFIED). Absent: no floor. The decision log records it, and "
        "`imr-policy replay` decides again with it. Any other query parameter is a 400 `invalid-parameter`.",
        "schema": {"type": "string", "enum": list(PROVENANCE_ORDER)},
    }


def _tracing_headers() -> list[dict[str, Any]]:
    return [
        {
            "name": REQUEST_ID,
            "in": "header",
            "required": False,
            "description": "the caller's request id (1-128 of `A-Za-z0-9._:@/+=-`), echoed and logged with the "
            "decision id; another value is replaced by a new UUID",
            "schema": {"type": "string"},
        },
        {
            "name": TRACEPARENT,
            "in": "header",
            "required": False,
            "description": "W3C trace context; a valid one is echoed and logged (its trace id) with the decision id",
            "schema": {"type": "string"},
        },
    ]


def _determination_paths(
    floor: dict[str, Any], tracing: list[dict[str, Any]], answered_by: dict[str, Any]
) -> dict[str, Any]:
    """`/v1/determinations` and its batch form."""
    decided = _json("Determination", "the determination; it is in the decision log under the decision id")
    decided["headers"] = {
        DECISION_ID: {"description": "the id of this decision in the decision log", "schema": {"type": "string"}},
        **answered_by,
    }
    return {
        "/v1/determinations": {
            "post": {
                "operationId": "determine",
                "summary": "decide every request of a case",
                "parameters": [floor, *tracing],
                "requestBody": _case_body("a case per schemas/case.schema.json"),
                "responses": {
                    "200": decided,
                    **_problems(
                        *_BODY_PROBLEMS,
                        "invalid-parameter",
                        "invalid-case",
                        "engine-error",
                        "audit-unavailable",
                        *_WORKER_PROBLEMS,
                    ),
                },
            }
        },
        "/v1/determinations:batch": {
            "post": {
                "operationId": "determineBatch",
                "summary": "decide many cases: JSON Lines in, JSON Lines out, in order, streamed",
                "description": (
                    "One case per line (`Content-Type: application/x-ndjson`; at most 1000 lines and 16 MiB by "
                    "default). Each answer line is `{line, decision_id, policy_set, determination}` or `{line, "
                    "problem}` (a problem+json object), in the order of the cases, streamed as each is decided. "
                    "Each determination is logged as a single one is; a client that goes away stops the batch."
                ),
                "parameters": [floor, *tracing],
                "requestBody": {
                    "required": True,
                    "description": "one case per line, each per schemas/case.schema.json",
                    "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
                },
                "responses": {
                    "200": {
                        "description": "one JSON line per case, in order",
                        "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
                    },
                    **_problems("body-too-large", "unsupported-media-type", "invalid-parameter"),
                },
            }
        },
    }


def _service_paths() -> dict[str, Any]:
    """Validation, the policy set, reloading, health, readiness and metrics."""
    return {
        "/v1/validate": {
            "post": {
                "operationId": "validate",
                "summary": "every problem with a case, without deciding it",
                # any JSON value is accepted: saying what is wrong with it is the point of this endpoint
                "requestBody": {
                    "required": True,
                    "description": "a case per schemas/case.schema.json, or any other JSON value",
                    "content": {"application/json": {"schema": {"description": "any JSON value, e.g. a Case"}}},
                },
                "responses": {
                    "200": _json("Validation", "the diagnostics; `valid` when there is no error"),
                    **_problems(*_BODY_PROBLEMS, *_WORKER_PROBLEMS),
                },
            }
        },
        "/v1/policies": {
            "get": {
                "operationId": "policies",
                "summary": "the policy set in use: editions, effective dates, content hash",
                "responses": {"200": _json("Policies", "the policy set in use"), **_problems("not-ready")},
            }
        },
        "/v1/admin/reload": {
            "post": {
                "operationId": "reload",
                "summary": "load the rule files again, validate them fully, and swap them in atomically",
                "responses": {
                    "200": _json("Reload", "the policy set now in use"),
                    **_problems("unauthorized", "admin-disabled", "invalid-policies", "internal-error", "not-ready"),
                },
            }
        },
        "/healthz": {
            "get": {
                "operationId": "health",
                "summary": "the server process answers",
                "responses": {"200": _json("Health", "alive")},
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics of the server (text exposition format)",
                "responses": {
                    "200": {
                        "description": "requests, latency, determinations, worker restarts, reloads, log writes",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/readyz": {
            "get": {
                "operationId": "ready",
                "summary": "a policy set is loaded and at least one worker is live",
                "responses": {"200": _json("Readiness", "ready"), **_problems("not-ready")},
            }
        },
    }


def document(version: str) -> dict[str, Any]:
    answered_by = {
        POLICY_SET: {"description": "content hash of the policy set that answered", "schema": {"type": "string"}}
    }
    floor, tracing = _floor_parameter(), _tracing_headers()
    paths = {
        **_determination_paths(floor, tracing, answered_by),
        "/v1/letters": _letters(floor, tracing, answered_by),
        **_service_paths(),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "imr-policy",
            "version": version,
            "description": "Medical-necessity determinations for California UR/IMR (MTUS, ACOEM, ODG). "
            "Errors are RFC 9457 problem documents; see docs/service.md.",
        },
        "paths": paths,
        "components": {"schemas": _components()},
    }

"""JSON Schema errors -> Diagnostics with a stable code, a JSON path and a hint.

The schemas in `schemas/` are the single source of truth. The fast `jsonschema_rs` validator
answers "valid?" on the hot path; only when it says no does the Python `jsonschema` package list
every error, with the context needed for a humane message.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import jsonschema
import jsonschema_rs

from imr_policy import resources
from imr_policy.diagnostics import Diagnostic, did_you_mean
from imr_policy.yamlsrc import child_path

if TYPE_CHECKING:
    from collections.abc import Iterator

    from imr_policy.yamlsrc import SourceMap

_TYPE_NAMES = {
    "integer": "a whole number",
    "number": "a number",
    "string": "a string",
    "boolean": "`true` or `false`",
    "object": "a mapping",
    "array": "a list",
    "null": "`null`",
}


@cache
def fast_validator(name: str) -> Any:
    return jsonschema_rs.Draft202012Validator(resources.schema(name), validate_formats=True)


@cache
def full_validator(name: str) -> jsonschema.protocols.Validator:
    cls = jsonschema.Draft202012Validator
    return cls(resources.schema(name), format_checker=cls.FORMAT_CHECKER)


def describe_value(value: object) -> str:
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (int, float)):
        return f"the number `{value}`"
    if isinstance(value, str):
        return f"the string `{value}`" if len(value) <= 60 else "a long string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "a value"


def _expected(schema: dict[str, Any]) -> str:
    kinds = schema.get("type")
    if isinstance(kinds, list):
        return " or ".join(_TYPE_NAMES.get(str(k), str(k)) for k in kinds)
    if isinstance(kinds, str):
        return _TYPE_NAMES.get(kinds, kinds)
    return "a different value"


def _path(error: jsonschema.ValidationError) -> str:
    path = "$"
    for part in error.absolute_path:
        path = child_path(path, part)
    return path


def schema_diagnostics(
    name: str, data: Any, *, prefix: str, file: str | None = None, source_map: SourceMap | None = None
) -> Iterator[Diagnostic]:
    """Every schema violation of `data` against schema `name`, as diagnostics coded `{prefix}.*`."""
    for error in full_validator(name).iter_errors(data):
        yield from _translate(error, prefix=prefix, file=file, source_map=source_map)


def _translate(
    error: jsonschema.ValidationError, *, prefix: str, file: str | None, source_map: SourceMap | None
) -> Iterator[Diagnostic]:
    path = _path(error)
    kind = str(error.validator)
    rule: Any = error.validator_value
    schema: dict[str, Any] = error.schema if isinstance(error.schema, dict) else {}
    key_position = False
    if kind == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        extras = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        for extra in extras:
            sub = child_path(path, extra)
            suggestion = did_you_mean(extra, allowed) or f"expected one of: {', '.join(allowed)}"
            yield _at(
                f"{prefix}.unknown-field",
                f"unknown field `{extra}`",
                sub,
                file,
                source_map,
                hint=suggestion,
                key=True,
            )
        return
    if kind == "required":
        missing = [p for p in rule if isinstance(error.instance, dict) and p not in error.instance]
        for field in missing:
            yield _at(
                f"{prefix}.missing-field",
                f"missing required field `{field}`",
                path,
                file,
                source_map,
                hint=f"add `{field}` here",
            )
        return
    code: str
    message: str
    hint: str | None
    if kind == "type":
        code, message = (
            f"{prefix}.type",
            f"expected {_expected(schema)}, got {describe_value(error.instance)}",
        )
        hint = "remove the quotes" if isinstance(error.instance, str) and error.instance.isdigit() else None
    elif kind in ("enum", "const"):
        choices = [str(c) for c in (rule if kind == "enum" else [rule])]
        code = f"{prefix}.enum"
        message = f"{describe_value(error.instance)} is not allowed here; expected one of: {', '.join(choices)}"
        hint = did_you_mean(error.instance, choices)
    elif kind in ("format", "pattern") and schema.get("format") == "date":
        code = f"{prefix}.date"
        message = f"expected a calendar date as YYYY-MM-DD, got {describe_value(error.instance)}"
        hint = "write dates as ISO 8601, e.g. `2015-07-10`"
    elif kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        code = f"{prefix}.range"
        bound = rule
        word = "at least" if kind.startswith(("min", "exclusiveMin")) else "at most"
        message = f"expected a number {word} `{bound}`, got {describe_value(error.instance)}"
        hint = None
    elif kind in ("minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties"):
        code = f"{prefix}.size"
        message = f"size out of range: {error.message}"
        hint = None
        if kind == "minItems" and rule == 1:
            message = "expected at least one entry"
    elif kind == "pattern":
        code = f"{prefix}.pattern"
        message = f"{describe_value(error.instance)} does not have the expected form (`{rule}`)"
        hint = None
    else:
        code, message, hint = f"{prefix}.invalid", error.message, None
    yield _at(code, message, path, file, source_map, hint=hint, key=key_position)


def _at(
    code: str,
    message: str,
    path: str,
    file: str | None,
    source_map: SourceMap | None,
    *,
    hint: str | None = None,
    key: bool = False,
) -> Diagnostic:
    where = source_map.locate(path, key=key) if source_map else None
    return Diagnostic(
        code=code,
        message=message,
        path=path,
        file=file,
        line=where[0] if where else None,
        column=where[1] if where else None,
        hint=hint,
    )

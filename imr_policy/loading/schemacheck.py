"""JSON Schema errors -> Diagnostics with a stable code, a JSON path and a hint.

The schemas in `schemas/` are the single source of truth. The fast `jsonschema_rs` validator
answers "valid?" on the hot path; only when it says no does the Python `jsonschema` package list
every error, with the context needed for a humane message.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import jsonschema
import jsonschema_rs

from imr_policy.loading import resources
from imr_policy.loading.limits import for_prefix
from imr_policy.loading.yamlsrc import _capped, child_path, located
from imr_policy.model.diagnostics import Diagnostic, did_you_mean

if TYPE_CHECKING:
    from collections.abc import Iterator

    from imr_policy.loading.yamlsrc import SourceMap

_SPACE = re.compile(r"\s")
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


# The fields of a case whose value may identify the patient (its dates, the claimant, diagnoses, procedures and
# notes, the caller's case id): a message about one never repeats the value; its position says where it is.
_WITHHELD_KEYS = frozenset(
    {"case_id", "age", "sex", "description", "code", "procedure", "progress_notes", "at", "mailed_on"}
)


def withheld(path: str) -> bool:
    """Whether a case's value at `path` (a JSON path) is one a message must not repeat."""
    key = path.rsplit(".", 1)[-1].split("[", 1)[0]
    return key in _WITHHELD_KEYS or "date" in key or key.endswith(("_at", "_on"))


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return describe_value(value)


def describe_value(value: object, *, private: bool = False) -> str:
    """`value` as a message shows it. `private` (cases): text with spaces, which may be a clinical note
    written in the wrong place, is never repeated."""
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (int, float)):
        return f"the number `{value}`"
    if isinstance(value, str):
        if len(value) > 60:
            return "a long string"
        return "a string of text" if private and _SPACE.search(value) else f"the string `{value}`"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "a value"


def _boolean_hint(value: bool, schema: dict[str, Any]) -> str:
    """YAML 1.1 reads an unquoted `yes`, `no`, `on`, `off` (and `true`, `false`) as a boolean: where a string
    is expected, say so, and name the strings allowed (quoting `yes` would only lead to the next error)."""
    words = "`yes`, `on` or `true`" if value else "`no`, `off` or `false`"
    why = f"YAML reads an unquoted {words} as the boolean `{str(value).lower()}`"
    choices = schema.get("enum")
    if isinstance(choices, list) and choices:
        return f"{why}; this field takes one of: {', '.join(map(str, choices))}"
    return f"{why}; quote it if you mean the word"


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
) -> list[Diagnostic]:
    """Every schema violation of `data` against schema `name`, as diagnostics coded `{prefix}.*`.

    One problem gives one diagnostic: duplicates (a date failing both `format` and `pattern`) are
    merged, and an `enum` complaint about a value of the wrong type is dropped in favour of the type.
    The work is bounded: errors are translated as the validator finds them, and after the limit
    `max_errors` (imr_policy/loading/limits.py) the validator is stopped and one `diagnostics.capped` says so.
    """
    cap = for_prefix(prefix).max_errors
    errors: list[jsonschema.ValidationError] = []
    stopped = False
    for error in full_validator(name).iter_errors(data):
        if len(errors) >= cap:
            stopped = True
            break
        errors.append(error)
    fixes = _one_mistake(errors, resources.schema(name))
    found: list[Diagnostic] = []
    for error in errors:
        found.extend(_translate(error, prefix=prefix, file=file, source_map=source_map, fixes=fixes))
    if stopped:
        found.append(_capped(cap, file))
    typed = {d.path for d in found if d.code == f"{prefix}.type"}
    unique: dict[tuple[str, str, str], Diagnostic] = {}
    for d in found:
        if d.code == f"{prefix}.enum" and d.path in typed:
            continue
        unique.setdefault((d.code, d.path, d.message), d)
    return list(unique.values())


def float_diagnostics(
    data: Any, *, prefix: str, file: str | None = None, source_map: SourceMap | None = None, path: str = "$"
) -> list[Diagnostic]:
    """Counts are whole numbers written as such. JSON Schema accepts `6.0` as an integer and neither
    contract has any fractional number, so every float is reported."""
    if path == "$" and not _contains_float(data):
        return []  # the common case, without building a path string per value
    found: list[Diagnostic] = []
    if isinstance(data, float):
        found.append(
            located(
                f"{prefix}.type",
                f"expected a whole number, got the number `{data}`",
                path,
                file=file,
                source_map=source_map,
                hint="write counts without a decimal point",
            )
        )
    elif isinstance(data, dict):
        for key, value in data.items():
            found.extend(
                float_diagnostics(value, prefix=prefix, file=file, source_map=source_map, path=child_path(path, key))
            )
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found.extend(
                float_diagnostics(value, prefix=prefix, file=file, source_map=source_map, path=child_path(path, i))
            )
    return found


def _contains_float(data: Any) -> bool:
    kind = type(data)
    if kind is float:
        return True
    if kind is dict:
        return any(_contains_float(v) for v in data.values())
    if kind is list:
        return any(_contains_float(v) for v in data)
    return isinstance(data, float)


@dataclass(slots=True)
class _Fixes:
    """Errors that are one mistake: an unknown key that is a misspelt required field of its own mapping
    (`citaton` for a missing `citation`), or a field of a child mapping written one level too far out
    (a dedented `reason` beside `outcome`). Each is reported once, at the key, with the fix."""

    renames: dict[tuple[str, str], str] = field(default_factory=dict)  # (mapping path, key) -> field
    indents: dict[tuple[str, str], str] = field(default_factory=dict)  # (mapping path, key) -> child key
    explained: set[tuple[str, str]] = field(default_factory=set)  # (mapping path, field) no longer missing


def _resolve(schema: Any, root: dict[str, Any]) -> dict[str, Any]:
    """A subschema with its local `$ref` followed (at most a few hops)."""
    for _ in range(8):
        if not isinstance(schema, dict):
            return {}
        ref = schema.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return schema
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        schema = target
    return {}


def _one_mistake(errors: list[jsonschema.ValidationError], root: dict[str, Any]) -> _Fixes:
    fixes = _Fixes()
    missing: dict[str, list[str]] = {}
    unknown: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []  # path, key, instance, schema
    for error in errors:
        instance, schema = error.instance, error.schema
        if not isinstance(instance, dict) or not isinstance(schema, dict):
            continue
        if error.validator == "required":
            required: Any = error.validator_value
            missing.setdefault(_path(error), []).extend(
                f for f in required if f not in instance and repr(f) in error.message
            )
        elif error.validator == "additionalProperties":
            allowed = set(schema.get("properties", {}))
            unknown.extend((_path(error), str(k), instance, schema) for k in sorted(set(instance) - allowed))
    for path, key, instance, schema in unknown:
        open_fields = [f for f in missing.get(path, []) if (path, f) not in fixes.explained]
        close = difflib.get_close_matches(key, open_fields, n=1, cutoff=0.6)
        if close:
            fixes.renames[(path, key)] = close[0]
            fixes.explained.add((path, close[0]))
            continue
        for child, value in instance.items():
            if not isinstance(value, dict) or key in value:
                continue
            child_schema = _resolve(schema.get("properties", {}).get(child), root)
            if key in child_schema.get("properties", {}):
                fixes.indents[(path, key)] = str(child)
                fixes.explained.add((child_path(path, child), key))
                break
    return fixes


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


@dataclass(frozen=True, slots=True)
class _Failure:
    """One jsonschema error with what translating it needs: where it is and what the message may say."""

    error: jsonschema.ValidationError
    private: bool  # a case may hold patient data; rule files and policy tests do not
    file: str | None
    source_map: SourceMap | None
    nullable: bool
    fixes: _Fixes | None

    @property
    def path(self) -> str:
        return _path(self.error)

    @property
    def rule(self) -> Any:
        return self.error.validator_value

    @property
    def schema(self) -> dict[str, Any]:
        return self.error.schema if isinstance(self.error.schema, dict) else {}

    @property
    def instance(self) -> Any:
        return self.error.instance

    @property
    def shown(self) -> str:
        """The value, as a message shows it (in a case, never a value that may identify the patient)."""
        if self.private and withheld(self.path) and not isinstance(self.error.instance, (list, dict, type(None))):
            return f"{_kind(self.error.instance)} (not repeated: it may identify the patient)"
        return describe_value(self.error.instance, private=self.private)

    def at(
        self, code: str, message: str, hint: str | None, *, path: str | None = None, key: bool = False
    ) -> Diagnostic:
        """A diagnostic at the error's path (or `path`)."""
        where = self.path if path is None else path
        return located(code, message, where, file=self.file, source_map=self.source_map, hint=hint, key=key)


def _translate(
    error: jsonschema.ValidationError,
    *,
    prefix: str,
    file: str | None,
    source_map: SourceMap | None,
    nullable: bool = False,
    fixes: _Fixes | None = None,
) -> Iterator[Diagnostic]:
    """The diagnostics for one jsonschema error, by the translator of its validator keyword."""
    failure = _Failure(error, prefix == "case", file, source_map, nullable, fixes)
    yield from _TRANSLATORS.get(str(error.validator), _invalid)(failure, prefix)


def _invalid(f: _Failure, prefix: str) -> Iterable[Diagnostic]:
    return (f.at(f"{prefix}.invalid", f.error.message, "see the schema for what this field accepts"),)


def _branches(f: _Failure, prefix: str) -> Iterable[Diagnostic]:
    """`anyOf`/`oneOf`: the failing branches' own errors. `X or null`: the null branch's complaint says
    nothing useful; report the other branch's."""
    context = f.error.context
    if not context:
        return _invalid(f, prefix)
    useful = [e for e in context if not (e.validator == "type" and e.validator_value == "null")]
    return (
        d
        for sub in useful or context
        for d in _translate(
            sub,
            prefix=prefix,
            file=f.file,
            source_map=f.source_map,
            nullable=len(useful) < len(context),
            fixes=f.fixes,
        )
    )


def _unknown_fields(f: _Failure, prefix: str) -> Iterator[Diagnostic]:
    """`additionalProperties`: one diagnostic per unknown key, at the key, with the fix when it is one mistake."""
    path, fixes = f.path, f.fixes
    allowed = sorted(f.schema.get("properties", {}))
    extras = sorted(set(f.instance) - set(allowed)) if isinstance(f.instance, dict) else []
    for extra in extras:
        text = f"unknown field `{extra}`"
        suggestion = did_you_mean(extra, allowed) or f"expected one of: {', '.join(allowed)}"
        if fixes is not None and (path, extra) in fixes.renames:
            wanted = fixes.renames[(path, extra)]
            text += f"; did you mean `{wanted}`?"
            suggestion = f"rename `{extra}` to `{wanted}`"
        elif fixes is not None and (path, extra) in fixes.indents:
            under = fixes.indents[(path, extra)]
            text += f" here; indent it under `{under}`"
            suggestion = f"`{extra}` is a field of `{under}`: indent it to line up with the fields of `{under}`"
        yield f.at(f"{prefix}.unknown-field", text, suggestion, path=child_path(path, extra), key=True)


def _missing_fields(f: _Failure, prefix: str) -> Iterator[Diagnostic]:
    """`required`: jsonschema reports one error per missing field; its message names the field."""
    path, instance = f.path, f.instance
    missing = [p for p in f.rule if isinstance(instance, dict) and p not in instance and repr(p) in f.error.message]
    for name in missing:
        if f.fixes is not None and (path, name) in f.fixes.explained:
            continue  # reported as the unknown key that was meant to be this field
        yield f.at(f"{prefix}.missing-field", f"missing required field `{name}`", f"add `{name}` here")


def _wrong_type(f: _Failure, prefix: str) -> Iterable[Diagnostic]:
    instance = f.instance
    expected = _expected(f.schema) + (" or `null`" if f.nullable else "")
    if isinstance(instance, str) and instance.lstrip("-").isdigit() and "number" in expected:
        hint = "remove the quotes"
    elif isinstance(instance, (int, float, bool)) and "string" in expected:
        if isinstance(instance, bool):
            hint = _boolean_hint(instance, f.schema)
        else:
            hint = "quote it" if f.private and withheld(f.path) else f'quote it: `"{instance}"`'
    else:
        hint = f"write {expected} here"
    return (f.at(f"{prefix}.type", f"expected {expected}, got {f.shown}", hint),)


def _not_a_choice(f: _Failure, prefix: str) -> Iterable[Diagnostic]:
    """`enum` and `const`."""
    choices = [str(c) for c in (f.rule if f.error.validator == "enum" else [f.rule])]
    instance = f.instance
    hint = did_you_mean(instance, choices) or (
        "values are case-sensitive"
        if isinstance(instance, str) and instance.lower() in [c.lower() for c in choices]
        else f"use one of: {', '.join(choices)}"
    )
    return (f.at(f"{prefix}.enum", f"{f.shown} is not allowed here; expected one of: {', '.join(choices)}", hint),)


def _not_a_date(f: _Failure, prefix: str) -> Iterable[Diagnostic]:
    return (
        f.at(
            f"{prefix}.date",
            f"expected a calendar date as YYYY-MM-DD, got {f.shown}",
            "write dates as ISO 8601, e.g. `2015-07-10`, and check that the day exists",
        ),
    )


def _bad_format(f: _Failure, prefix: str) -> Iterable[Diagnostic]:
    return _not_a_date(f, prefix) if f.schema.get("format") == "date" else _invalid(f, prefix)


def _out_of_range(f: _Failure, prefix: str) -> Iterable[Diagnostic]:
    """`minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`."""
    word = "at least" if str(f.error.validator).startswith(("min", "exclusiveMin")) else "at most"
    return (
        f.at(f"{prefix}.range", f"expected a number {word} `{f.rule}`, got {f.shown}", f"use a value {word} {f.rule}"),
    )


def _wrong_length(f: _Failure, prefix: str) -> Iterable[Diagnostic]:
    """`minLength`, `maxLength`."""
    kind, rule = f.error.validator, f.rule
    if kind == "minLength" and rule == 1:
        return (
            f.at(
                f"{prefix}.size",
                "expected a non-empty string",
                "write a value, or leave the field out if it is optional",
            ),
        )
    word = "at least" if kind == "minLength" else "at most"
    message = f"expected {word} {_plural(rule, 'character')}, got {len(f.instance)}"
    return (f.at(f"{prefix}.size", message, "shorten the text" if kind == "maxLength" else "write a longer value"),)


def _wrong_count(f: _Failure, prefix: str) -> Iterable[Diagnostic]:
    """`minItems`, `maxItems`."""
    kind, rule = f.error.validator, f.rule
    if kind == "minItems" and rule == 1:
        return (f.at(f"{prefix}.size", "expected at least one entry", "add an entry"),)
    word = "at least" if kind == "minItems" else "at most"
    message = f"expected {word} {_plural(rule, 'entry', 'entries')}, got {len(f.instance)}"
    return (f.at(f"{prefix}.size", message, "split the input" if kind == "maxItems" else "add entries"),)


def _wrong_fields(f: _Failure, prefix: str) -> Iterable[Diagnostic]:
    """`minProperties`, `maxProperties`."""
    schema = f.schema
    options = ", ".join(f"`{k}`" for k in schema.get("properties", {}))
    if schema.get("maxProperties") == schema.get("minProperties") == 1:
        message, hint = f"expected exactly one of {options}", f"keep one of {options}"
    elif f.error.validator == "minProperties" and schema.get("minProperties") == 1 and "maxProperties" not in schema:
        message, hint = "expected at least one field", f"add one of {options}"
    else:
        message = (
            f"expected between {schema.get('minProperties', 0)} and "
            f"{schema.get('maxProperties', 'any number of')} fields"
        )
        hint = f"keep one of {options}"
    return (f.at(f"{prefix}.size", message, hint),)


def _repeats(f: _Failure, prefix: str) -> Iterable[Diagnostic]:
    """`uniqueItems`: in one pass, by canonical JSON text (a list may hold thousands of entries; `in` on
    each would be quadratic); at most ten repeats are named."""
    items: list[Any] = list(f.instance) if isinstance(f.instance, list) else []
    first: dict[str, int] = {}
    dupes: list[Any] = []
    positions: list[int] = []
    for i, v in enumerate(items):
        text = json.dumps(v, sort_keys=True, default=str)
        if text not in first:
            first[text] = i
        elif len(positions) < 10:
            positions.append(i)
            if not any(d == v for d in dupes):
                dupes.append(v)
    if all(isinstance(d, (str, int, bool)) and len(str(d)) <= 60 for d in dupes):
        message = f"the list repeats {', '.join(f'`{d}`' for d in dupes)}"
    else:
        message = f"the list repeats an entry (at {', '.join(f'[{i}]' for i in positions)})"
    return (f.at(f"{prefix}.duplicate-entry", message, "list each entry once"),)


_ID_FORM = (
    "is not a valid id",
    "ids use lowercase letters, digits, `.`, `_` and `-`, and start with a letter or digit",
)


@cache
def _named_forms() -> dict[str, tuple[str, str]]:
    """What a value failing one of the schemas' named forms is not, and the hint, by the form's pattern
    (read from the schemas, so the two cannot drift apart)."""
    case, tests = resources.schema("case"), resources.schema("policy-test")
    forms = {
        case["properties"]["diagnoses"]["items"]["properties"]["code"]["pattern"]: (
            "is not an ICD-10-CM or ICD-9-CM code",
            "expected an ICD-10-CM code such as `F32.1` or an ICD-9-CM code such as `847.2`, or leave `code` out",
        ),
        tests["$defs"]["rule_refs"]["items"]["pattern"]: (
            "is not a rule reference",
            "write `rule-id`, `guideline:rule-id` or `guideline@edition:rule-id`, in lowercase",
        ),
        tests["properties"]["tests"]["items"]["properties"]["name"]["pattern"]: _ID_FORM,
    }
    for name in ("policy", "ur-procedure"):
        forms[resources.schema(name)["$defs"]["id"]["pattern"]] = _ID_FORM
    return forms


def _no_match(f: _Failure, prefix: str) -> Iterable[Diagnostic]:
    """`pattern`: a date, one of the named forms (ids, rule references, diagnosis codes), or any other form."""
    if f.schema.get("format") == "date":
        return _not_a_date(f, prefix)
    form = _named_forms().get(str(f.rule))
    if form is None:
        return (f.at(f"{prefix}.pattern", f"{f.shown} does not have the expected form (`{f.rule}`)", _OTHER_FORM),)
    return (f.at(f"{prefix}.pattern", f"{f.shown} {form[0]}", form[1]),)


_OTHER_FORM = "see the schema for the expected form"

_Translator = Callable[[_Failure, str], Iterable[Diagnostic]]
# jsonschema's validator keyword -> the translator of its errors; any other keyword: `{prefix}.invalid`
_TRANSLATORS: dict[str, _Translator] = {
    "anyOf": _branches,
    "oneOf": _branches,
    "additionalProperties": _unknown_fields,
    "required": _missing_fields,
    "type": _wrong_type,
    "enum": _not_a_choice,
    "const": _not_a_choice,
    "format": _bad_format,
    "pattern": _no_match,
    "minimum": _out_of_range,
    "maximum": _out_of_range,
    "exclusiveMinimum": _out_of_range,
    "exclusiveMaximum": _out_of_range,
    "minLength": _wrong_length,
    "maxLength": _wrong_length,
    "minItems": _wrong_count,
    "maxItems": _wrong_count,
    "minProperties": _wrong_fields,
    "maxProperties": _wrong_fields,
    "uniqueItems": _repeats,
}

"""YAML (and JSON) text -> plain data plus a source map.

The source map gives the line and column of every value and every mapping key by JSON path, so
schema and semantic diagnostics can point at `file:line:col`. Duplicate keys are rejected (PyYAML
silently keeps the last one). Dates stay strings: the case and policy schemas check them, and a
silently converted `datetime.date` would hide a typo such as `2015-7-10`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from imr_policy.diagnostics import Diagnostic, Severity

try:  # the C composer is much faster on large corpora; the pure-Python one behaves the same
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - libyaml missing
    _Loader = yaml.SafeLoader

_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_constructor = yaml.constructor.SafeConstructor()


@dataclass(frozen=True, slots=True)
class SourceMap:
    """1-based (line, column) of values and keys, by JSON path."""

    values: dict[str, tuple[int, int]] = field(default_factory=dict)
    keys: dict[str, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: str, *, key: bool = False) -> tuple[int, int] | None:
        """Position of `path`, or of its nearest ancestor that has one."""
        table = self.keys if key else self.values
        probe = path
        while True:
            if probe in table:
                return table[probe]
            if probe in self.values:
                return self.values[probe]
            if probe in ("$", ""):
                return None
            probe = parent_path(probe)


def parent_path(path: str) -> str:
    if path.endswith("]"):
        return path[: path.rindex("[")]
    if "." in path:
        return path[: path.rindex(".")]
    return "$"


def child_path(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    text = str(key)
    if text.isidentifier():
        return f"{path}.{text}"
    escaped = text.replace("'", "\\'")
    return f"{path}['{escaped}']"


@dataclass(frozen=True, slots=True)
class Loaded:
    data: Any
    source_map: SourceMap
    diagnostics: tuple[Diagnostic, ...]


def load_text(text: str, *, file: str | None, code_prefix: str) -> Loaded:
    """Parse one YAML/JSON document. Problems come back as diagnostics, never as exceptions."""
    smap = SourceMap()
    problems: list[Diagnostic] = []
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problems.append(
            Diagnostic(
                code=f"{code_prefix}.syntax",
                message=f"not valid YAML or JSON: {exc.problem or exc.context}",
                file=file,
                line=mark.line + 1 if mark else None,
                column=mark.column + 1 if mark else None,
                hint="check indentation, quoting and brackets near this position",
            )
        )
        return Loaded(None, smap, tuple(problems))
    except yaml.YAMLError as exc:  # pragma: no cover - unmarked errors are rare
        problems.append(Diagnostic(code=f"{code_prefix}.syntax", message=f"not valid YAML or JSON: {exc}", file=file))
        return Loaded(None, smap, tuple(problems))
    if node is None:
        problems.append(
            Diagnostic(
                code=f"{code_prefix}.syntax",
                message="the document is empty",
                file=file,
                line=1,
                column=1,
                hint="write a YAML or JSON mapping",
            )
        )
        return Loaded(None, smap, tuple(problems))
    data = _build(node, "$", smap, problems, file, code_prefix)
    return Loaded(data, smap, tuple(problems))


def _pos(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _build(
    node: yaml.Node, path: str, smap: SourceMap, problems: list[Diagnostic], file: str | None, prefix: str
) -> Any:
    smap.values[path] = _pos(node)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            # Keys keep their source text: YAML 1.1 would turn `on:`, `yes:` or `1:` into a boolean or a
            # number, which no schema field is, and which would confuse every later message.
            if not isinstance(key_node, yaml.ScalarNode):
                problems.append(
                    Diagnostic(
                        code=f"{prefix}.syntax",
                        message="a mapping key must be a plain name",
                        path=path,
                        file=file,
                        line=_pos(key_node)[0],
                        column=_pos(key_node)[1],
                        hint="use a plain name such as `service:`",
                    )
                )
                continue
            key = key_node.value
            sub = child_path(path, key)
            if key in out:
                first = smap.keys.get(sub)
                problems.append(
                    Diagnostic(
                        code=f"{prefix}.duplicate-key",
                        message=f"duplicate key `{key}`" + (f" (first defined at line {first[0]})" if first else ""),
                        path=sub,
                        file=file,
                        line=_pos(key_node)[0],
                        column=_pos(key_node)[1],
                        hint="YAML would silently keep only the last value; remove or rename one of them",
                    )
                )
                continue
            smap.keys[sub] = _pos(key_node)
            out[key] = _build(value_node, sub, smap, problems, file, prefix)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, child_path(path, i), smap, problems, file, prefix) for i, item in enumerate(node.value)]
    if node.tag == _TIMESTAMP:
        return node.value
    return _constructor.construct_object(node, deep=True)


class StrictJsonError(ValueError):
    """Text that strict JSON parsing refuses; `key` is set for a repeated key (code `duplicate-key`)."""

    def __init__(self, message: str, *, key: str | None = None, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.message = message
        self.key = key
        self.line = line
        self.column = column


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise StrictJsonError(f"duplicate key `{key}`", key=key)
        out[key] = value
    return out


def _not_json(name: str) -> None:
    raise StrictJsonError(f"`{name}` is not a JSON value")


def strict_json(text: str) -> Any:
    """`json.loads`, stricter: a repeated key (JSON leaves its meaning open, and a silently dropped value
    could change a decision), `NaN` and `Infinity` (not JSON), integers too long to convert and nesting
    too deep to walk are all StrictJsonError, with a message in the house style."""
    try:
        return json.loads(text, object_pairs_hook=_no_repeated_keys, parse_constant=_not_json)
    except json.JSONDecodeError as exc:
        message = re.sub(r"'([^']*)'", r"`\1`", exc.msg)
        raise StrictJsonError(
            f"not valid JSON: {message[:1].lower()}{message[1:]}", line=exc.lineno, column=exc.colno
        ) from None
    except RecursionError:
        raise StrictJsonError("the document is nested too deeply") from None
    except StrictJsonError:
        raise
    except ValueError:  # an integer longer than Python converts (4,300 digits)
        raise StrictJsonError("a number has too many digits") from None


def located(
    code: str,
    message: str,
    path: str,
    *,
    file: str | None,
    source_map: SourceMap | None,
    hint: str | None = None,
    key: bool = False,
    severity: Severity = Severity.ERROR,
) -> Diagnostic:
    """A Diagnostic at `path`, with the line and column the source map gives for it (or its nearest parent)."""
    where = source_map.locate(path, key=key) if source_map else None
    return Diagnostic(
        code=code,
        message=message,
        path=path,
        file=file,
        line=where[0] if where else None,
        column=where[1] if where else None,
        hint=hint,
        severity=severity,
    )

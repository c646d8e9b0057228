"""YAML (and JSON) text -> plain data plus a source map.

The source map gives the line and column of every value and every mapping key by JSON path, so
schema and semantic diagnostics can point at `file:line:col`. Duplicate keys are rejected (PyYAML
silently keeps the last one). Dates stay strings: the case and policy schemas check them, and a
silently converted `datetime.date` would hide a typo such as `2015-7-10`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from imr_policy.loading.limits import Limits, for_prefix
from imr_policy.model.diagnostics import Diagnostic, Severity

try:  # the C composer is much faster on large corpora; the pure-Python one behaves the same
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - libyaml missing
    _Loader = yaml.SafeLoader

_TIMESTAMP = "tag:yaml.org,2002:timestamp"
# Stateless use only: its methods are called on single scalar nodes, never `construct_object`, which
# would keep every node it was given (`constructed_objects`) for the life of the process.
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


class LazySourceMap(SourceMap):
    """A source map of `text`, parsed the first time a position is asked for, then dropped with the map.

    For input that arrives as data with its text beside it (an HTTP body): a valid case never pays for
    the YAML parse, and an invalid one is translated once, with its positions."""

    __slots__ = ("_pending",)
    _pending: tuple[str | bytes, str] | None

    def __init__(self, text: str | bytes, *, code_prefix: str = "case") -> None:
        super().__init__({}, {})
        object.__setattr__(self, "_pending", (text, code_prefix))

    def locate(self, path: str, *, key: bool = False) -> tuple[int, int] | None:
        pending = self._pending
        if pending is not None:
            object.__setattr__(self, "_pending", None)
            text, prefix = pending
            try:
                source = text.decode("utf-8") if isinstance(text, bytes) else text
            except UnicodeDecodeError:
                source = None
            loaded = load_text(source, file=None, code_prefix=prefix) if source is not None else None
            if loaded is not None and not loaded.diagnostics:
                self.values.update(loaded.source_map.values)
                self.keys.update(loaded.source_map.keys)
        return SourceMap.locate(self, path, key=key)


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


def load_text(text: str, *, file: str | None, code_prefix: str, limits: Limits | None = None) -> Loaded:
    """Parse one YAML/JSON document. Problems come back as diagnostics, never as exceptions.

    The parse is bounded (imr_policy/loading/limits.py): the size is checked before parsing, and nesting depth,
    the number of values (after YAML alias expansion), string length and integer digits while values are
    built, so no document costs more than its limits allow. Only plain data is built: strings, whole
    numbers, numbers, booleans, null, mappings and lists; any other YAML tag is refused."""
    lim = limits or for_prefix(code_prefix)
    smap = SourceMap()
    size = _size(text, lim.max_bytes)
    if size is not None:
        what = f"the document has {size:,} bytes"
        return Loaded(None, smap, (lim.exceeded("max_bytes", what, prefix=code_prefix, file=file),))
    builder = _Builder(text, smap, lim, file, code_prefix)
    try:
        data = builder.document()
    except _Refused as exc:
        return Loaded(None, smap, (*builder.problems[: lim.max_errors - 1], exc.diagnostic))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = Diagnostic(
            code=f"{code_prefix}.syntax",
            message=f"not valid YAML or JSON: {exc.problem or exc.context}",
            file=file,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
            hint="check indentation, quoting and brackets near this position",
        )
        return Loaded(None, smap, (problem,))
    except yaml.YAMLError as exc:  # pragma: no cover - unmarked errors are rare
        problem = Diagnostic(code=f"{code_prefix}.syntax", message=f"not valid YAML or JSON: {exc}", file=file)
        return Loaded(None, smap, (problem,))
    except RecursionError:  # only with a max_depth raised past what this Python can recurse
        problem = lim.exceeded("max_depth", "the document is nested too deeply", prefix=code_prefix, file=file)
        return Loaded(None, smap, (problem,))
    finally:
        builder.close()
    problems = builder.problems
    if len(problems) > lim.max_errors:
        problems = [*problems[: lim.max_errors], _capped(lim.max_errors, file)]
    return Loaded(data, smap, tuple(problems))


def _size(text: str, limit: int) -> int | None:
    """The UTF-8 size of `text` when it is over `limit` bytes, else None (without encoding short texts)."""
    if len(text) * 4 <= limit:
        return None
    if len(text) > limit:
        return len(text.encode("utf-8", "surrogatepass"))
    size = len(text.encode("utf-8", "surrogatepass"))
    return size if size > limit else None


def _capped(cap: int, file: str | None) -> Diagnostic:
    """Said when a stage stops looking for problems after `cap` of them (the limit `max_errors`)."""
    return Diagnostic(
        code="diagnostics.capped",
        message=f"more problems not looked for: at most {cap:,} are examined per document",
        file=file,
        hint="fix the problems above and run again",
        severity=Severity.WARNING,
    )


class _Refused(Exception):
    """The input is over a limit (or uses a YAML feature refused outright): parsing stops here."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


_STR, _INT, _FLOAT, _BOOL, _NULL = (f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null"))
_MAP, _SEQ = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"
_SCALAR_TAGS = frozenset((_STR, _INT, _FLOAT, _BOOL, _NULL))
_BUILD = {
    _NULL: yaml.constructor.SafeConstructor.construct_yaml_null,
    _BOOL: yaml.constructor.SafeConstructor.construct_yaml_bool,
    _INT: yaml.constructor.SafeConstructor.construct_yaml_int,
    _FLOAT: yaml.constructor.SafeConstructor.construct_yaml_float,
}
# A recorded anchored node: its events, with each alias inside it replaced by the recording it names.
_Recording = list[Any]


class _Builder:
    """Plain data and a source map from the parser's event stream, within `Limits`.

    Working from events rather than from PyYAML's composed node graph keeps every bound in one place:
    an alias is expanded by replaying the events of its anchored node, and every replayed value counts
    towards `max_nodes` and `max_alias_nodes`, so an alias bomb stops at its limit instead of expanding
    to billions of values. Nothing outlives the call: no constructor state, no node graph."""

    def __init__(self, text: str, smap: SourceMap, lim: Limits, file: str | None, prefix: str) -> None:
        self.loader = _Loader(text)
        self.get_event: Any = self.loader.get_event
        self.smap = smap
        self.lim = lim
        self.file = file
        self.prefix = prefix
        self.problems: list[Diagnostic] = []
        self.nodes = 0
        self.expanded = 0
        self.anchors: dict[str, _Recording | None] = {}  # None: the anchored node is still open
        self.open: list[_Recording] = []

    def close(self) -> None:
        self.loader.dispose()
        self.anchors.clear()
        self.open.clear()

    # ------------------------------------------------------------------ events

    def _next(self) -> Any:
        event = self.get_event()
        if self.open:
            for recording in self.open:
                recording.append(event)
        return event

    def document(self) -> Any:
        self._next()  # StreamStart
        event = self._next()
        if isinstance(event, yaml.StreamEndEvent):
            self.problems.append(
                Diagnostic(
                    f"{self.prefix}.syntax",
                    "the document is empty",
                    "$",
                    self.file,
                    1,
                    1,
                    "write a YAML or JSON mapping",
                )
            )
            return None
        data = self._node(self._next(), self._next, "$", 1, replaying=False)
        self._next()  # DocumentEnd
        event = self._next()
        if not isinstance(event, yaml.StreamEndEvent):
            raise yaml.composer.ComposerError(
                None, None, "a second document (`---`) follows the first; write one document", event.start_mark
            )
        return data

    # ------------------------------------------------------------------ values

    def _refuse(self, name: str, what: str, path: str, event: Any) -> _Refused:
        line, column = _mark(event)
        return _Refused(
            self.lim.exceeded(name, what, prefix=self.prefix, path=path, file=self.file, line=line, column=column)
        )

    def _problem(self, code: str, message: str, path: str, event: Any, *, hint: str) -> None:
        if len(self.problems) > self.lim.max_errors:
            return  # load_text reports that more were found; none past the cap is worded
        line, column = _mark(event)
        self.problems.append(Diagnostic(code, message, path, self.file, line, column, hint))

    def _count(self, event: Any, path: str, replaying: bool) -> None:
        self.nodes += 1
        if self.nodes > self.lim.max_nodes:
            raise self._refuse("max_nodes", f"the document has more than {self.lim.max_nodes:,} values", path, event)
        if replaying:
            self.expanded += 1
            if self.expanded > self.lim.max_alias_nodes:
                what = f"the aliases expand to more than {self.lim.max_alias_nodes:,} values"
                raise self._refuse("max_alias_nodes", what, path, event)

    def _node(self, event: Any, pull: Any, path: str, depth: int, *, replaying: bool, record: bool = True) -> Any:
        if isinstance(event, (yaml.AliasEvent, tuple)):
            return self._alias(event, path, depth, record=record)
        anchor = None if replaying else event.anchor
        if anchor is not None:
            if self.lim.max_alias_nodes == 0:
                raise _Refused(self._no_aliases(path, event))
            recording: _Recording = [event]
            self.anchors[anchor] = None
            self.open.append(recording)
        try:
            value = self._value(event, pull, path, depth, replaying=replaying, record=record)
        finally:
            if anchor is not None:
                self.open.remove(recording)
        if anchor is not None:
            if isinstance(event, yaml.ScalarEvent):
                recording = [event]
            self.anchors[anchor] = recording
        return value

    def _value(self, event: Any, pull: Any, path: str, depth: int, *, replaying: bool, record: bool) -> Any:
        self._count(event, path, replaying)
        if record:
            self.smap.values[path] = _mark(event)
        if isinstance(event, yaml.ScalarEvent):
            return self._scalar(event, path)
        if depth > self.lim.max_depth:
            what = f"the document nests mappings and lists deeper than {self.lim.max_depth} levels"
            raise self._refuse("max_depth", what, path, event)
        if isinstance(event, yaml.SequenceStartEvent):
            self._collection_tag(event, _SEQ, path)
            out: list[Any] = []
            while not isinstance(item := pull(), yaml.SequenceEndEvent):
                sub = child_path(path, len(out))
                out.append(self._node(item, pull, sub, depth + 1, replaying=replaying, record=record))
            return out
        self._collection_tag(event, _MAP, path)
        prefix = self.prefix
        mapping: dict[Any, Any] = {}
        while not isinstance(key_event := pull(), yaml.MappingEndEvent):
            if not isinstance(key_event, yaml.ScalarEvent):
                # Keys keep their source text: YAML 1.1 would turn `on:`, `yes:` or `1:` into a boolean
                # or a number, which no schema field is, and which would confuse every later message.
                self._problem(
                    f"{prefix}.syntax",
                    "a mapping key must be a plain name",
                    path,
                    key_event,
                    hint="use a plain name such as `service:`",
                )
                self._node(key_event, pull, path, depth + 1, replaying=replaying, record=False)
                self._node(pull(), pull, path, depth + 1, replaying=replaying, record=False)
                continue
            key = key_event.value
            sub = child_path(path, key)
            self._count(key_event, sub, replaying)
            if key_event.anchor is not None and not replaying and self.lim.max_alias_nodes == 0:
                raise _Refused(self._no_aliases(sub, key_event))
            if len(key) > self.lim.max_string_chars:
                self._check_text(key, sub, key_event)
            if key_event.tag is not None:  # a key keeps its text; only a tag it should not have matters
                self._scalar_tag(key_event, sub)
            value_event = pull()
            if key in mapping:
                first = self.smap.keys.get(sub) if record else None
                self._problem(
                    f"{prefix}.duplicate-key",
                    f"duplicate key `{shown_key(key)}`" + (f" (first defined at line {first[0]})" if first else ""),
                    sub,
                    key_event,
                    hint="YAML would silently keep only the last value; remove or rename one of them",
                )
                self._node(value_event, pull, sub, depth + 1, replaying=replaying, record=False)
                continue
            if record:
                self.smap.keys[sub] = _mark(key_event)
            mapping[key] = self._node(value_event, pull, sub, depth + 1, replaying=replaying, record=record)
        return mapping

    def _alias(self, event: Any, path: str, depth: int, *, record: bool) -> Any:
        if isinstance(event, tuple):  # an alias inside a replayed recording: the recording it named then
            _, recording, _ = event
        else:
            if self.lim.max_alias_nodes == 0:
                raise _Refused(self._no_aliases(path, event))
            recording = self.anchors.get(event.anchor)
            if recording is None:
                inside = event.anchor in self.anchors
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"the alias `*{event.anchor}` "
                    + ("refers to the value that contains it" if inside else "names no anchor defined before it"),
                    event.start_mark,
                )
            for outer in self.open:  # an enclosing anchor replays this alias, never its expansion
                outer[-1] = ("alias", recording, event)
        events = iter(recording)
        return self._node(next(events), events.__next__, path, depth, replaying=True, record=record)

    def _no_aliases(self, path: str, event: Any) -> Diagnostic:
        line, column = _mark(event)
        if self.prefix != "case":  # rule files with `max_alias_nodes` set to 0 by an operator
            what = "the document uses a YAML anchor or alias"
            return self.lim.exceeded(
                "max_alias_nodes", what, prefix=self.prefix, path=path, file=self.file, line=line, column=column
            )
        return Diagnostic(
            "case.yaml-alias",
            "anchors and aliases (`&name`, `*name`) are not allowed in a case",
            path,
            self.file,
            line,
            column,
            "write every value out in full",
        )

    # ------------------------------------------------------------------ scalars and tags

    def _check_text(self, value: str, path: str, event: Any) -> None:
        if len(value) > self.lim.max_string_chars:
            what = f"a string has {len(value):,} characters"
            raise self._refuse("max_string_chars", what, path, event)

    def _scalar_tag(self, event: Any, path: str) -> str:
        tag = event.tag
        if tag is None or tag == "!":
            resolved: str = self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)  # type: ignore[no-untyped-call]
            return resolved
        if tag in _SCALAR_TAGS:
            return str(tag)
        self._bad_tag(tag, path, event)
        return ""

    def _collection_tag(self, event: Any, expected: str, path: str) -> None:
        if event.tag not in (None, "!", expected):
            self._bad_tag(event.tag, path, event)

    def _bad_tag(self, tag: str, path: str, event: Any) -> None:
        shown = "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag
        prefix = self.prefix
        self._problem(
            f"{prefix}.yaml-tag",
            f"the YAML tag `{shown[:60]}` is not allowed here",
            path,
            event,
            hint="write a plain string, number, `true`/`false`, `null`, mapping or list, without a tag",
        )

    def _scalar(self, event: Any, path: str) -> Any:
        value: str = event.value
        if len(value) > self.lim.max_string_chars:
            self._check_text(value, path, event)
        tag = _STR if event.style and event.tag is None else self._scalar_tag(event, path)  # quoted: text
        if tag in (_STR, _TIMESTAMP) or not tag:
            # Dates stay text (see the module docstring); a refused tag was reported, its value is dropped.
            return value if tag else None
        if tag == _INT:
            digits = len(value.lstrip("+-").replace("_", "").replace(":", ""))
            if digits > self.lim.max_integer_digits:
                raise self._refuse("max_integer_digits", f"a whole number has {digits:,} digits", path, event)
        node = yaml.ScalarNode(tag, value, event.start_mark, event.end_mark)
        try:
            return _BUILD[tag](_constructor, node)
        except (ValueError, yaml.YAMLError):  # `!!int abc`, `!!float x`
            prefix = self.prefix
            self._problem(
                f"{prefix}.syntax",
                f"not a valid {_TYPE_WORD[tag]}",
                path,
                event,
                hint="remove the tag, or write a value of that type",
            )
            return None


_TYPE_WORD = {_NULL: "`null`", _BOOL: "boolean", _INT: "whole number", _FLOAT: "number"}


def _mark(event: Any) -> tuple[int, int]:
    mark = event.start_mark
    return (mark.line + 1, mark.column + 1)


class StrictJsonError(ValueError):
    """Text that strict JSON parsing refuses; `key` is set for a repeated key (code `duplicate-key`)."""

    def __init__(self, message: str, *, key: str | None = None, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.message = message
        self.key = key
        self.line = line
        self.column = column
        self.limit: Diagnostic | None = None

    @classmethod
    def over(cls, diagnostic: Diagnostic) -> StrictJsonError:
        """Input over one of the limits; `limit` is the diagnostic that says which."""
        error = cls(diagnostic.message)
        error.limit = diagnostic
        return error


def shown_key(key: str) -> str:
    """A key as a message may show it: short, and Unicode text (a key could be anything a client sent)."""
    if len(key) > 60 or _SURROGATE.search(key):
        return "…"
    return key


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise StrictJsonError(f"duplicate key `{shown_key(key)}`", key=key)
        out[key] = value
    return out


def _not_json(name: str) -> None:
    raise StrictJsonError(f"`{name}` is not a JSON value")


def strict_json(text: str, *, limits: Limits | None = None) -> Any:
    """`json.loads`, stricter: a repeated key (JSON leaves its meaning open, and a silently dropped value
    could change a decision), `NaN` and `Infinity` (not JSON), integers too long and nesting too deep
    are all StrictJsonError, with a message in the house style. The text's size and its integers'
    digits are bounded by the case limits (or `limits`); `check_data` bounds the rest of the shape.
    A StrictJsonError with `limit` set is input over a limit (`limit` is the diagnostic)."""
    lim = limits or for_prefix("case")
    size = _size(text, lim.max_bytes)
    if size is not None:
        raise StrictJsonError.over(lim.exceeded("max_bytes", f"the document has {size:,} bytes", prefix="case"))

    def whole(digits: str) -> int:
        if len(digits.lstrip("-")) > lim.max_integer_digits:
            what = f"a whole number has {len(digits.lstrip('-')):,} digits"
            raise StrictJsonError.over(lim.exceeded("max_integer_digits", what, prefix="case"))
        return int(digits)

    try:
        return json.loads(text, object_pairs_hook=_no_repeated_keys, parse_constant=_not_json, parse_int=whole)
    except json.JSONDecodeError as exc:
        message = re.sub(r"'([^']*)'", r"`\1`", exc.msg)
        raise StrictJsonError(
            f"not valid JSON: {message[:1].lower()}{message[1:]}", line=exc.lineno, column=exc.colno
        ) from None
    except RecursionError:
        what = "the document is nested too deeply"
        raise StrictJsonError.over(lim.exceeded("max_depth", what, prefix="case")) from None
    except StrictJsonError:
        raise
    except ValueError:  # pragma: no cover - parse_int refuses long integers first
        raise StrictJsonError("a number has too many digits") from None


_SURROGATE = re.compile("[\ud800-\udfff]")


def check_data(
    data: Any,
    *,
    limits: Limits | None = None,
    file: str | None = None,
    source_map: SourceMap | None = None,
) -> Diagnostic | None:
    """The first way `data` as a case (parsed, or a caller's dict) is over the case limits or is not
    text, or None.

    Checks nesting depth, the number of values, string length, integer digits and lone surrogates
    (`"\\ud800"` in JSON is an escape for half a character, which no UTF-8 output can hold). One pass
    without paths; only a problem found is walked again to name its JSON path."""
    lim = limits or for_prefix("case")
    found = _shape(data, lim, None)
    if found is None:
        return None
    located_at: list[str] = []
    name, what = _shape(data, lim, located_at) or found
    path = located_at[0] if located_at else "$"
    if isinstance(source_map, LazySourceMap):
        # not parsed yet: an input over a limit is not parsed a second time only to place the refusal
        source_map = None
    if name == "text":
        return located(
            "case.text",
            "a string is not Unicode text: it holds a lone surrogate escape (`\\ud800` to `\\udfff`)",
            path,
            file=file,
            source_map=source_map,
            hint="write the character itself, or both halves of its surrogate pair",
        )
    where = source_map.locate(path) if source_map else None
    return lim.exceeded(
        name,
        what,
        prefix="case",
        path=path,
        file=file,
        line=where[0] if where else None,
        column=where[1] if where else None,
    )


def plain_within(data: Any, lim: Limits) -> tuple[Any, bool] | None:
    """The hot path of case validation, in one pass: `(data with every `datetime.date` as ISO text,
    whether it holds a float)` when `data` is made only of dicts with text keys, lists, text, whole
    numbers, floats, booleans, None and dates, and is within every limit `check_data` checks; None
    otherwise (then `check_data` and the full validation, which name the problem, are the way)."""
    walk = _PlainWalk(lim)
    try:
        plain = walk.value(data, 1)
    except (_NotPlain, RecursionError):
        return None
    return plain, walk.found_float


class _PlainWalk:
    """One `plain_within` pass (a class, not a closure: a closure that calls itself is a reference
    cycle, left to the garbage collector on every case)."""

    __slots__ = ("budget", "found_float", "largest", "max_chars", "max_depth")

    def __init__(self, lim: Limits) -> None:
        self.budget = lim.max_nodes
        self.found_float = False
        self.largest = 10**lim.max_integer_digits
        self.max_chars = lim.max_string_chars
        self.max_depth = lim.max_depth

    def value(self, value: Any, depth: int) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _NotPlain
        kind = type(value)
        if kind is dict:
            return self.mapping(value, depth)
        if kind is list:
            return self.sequence(value, depth)
        return self.scalar(value, kind)

    def mapping(self, value: dict[Any, Any], depth: int) -> dict[Any, Any]:
        """A dict (already counted): its keys checked, its scalars taken in the loop (most values of a case
        are), a call only for a nested container."""
        if depth > self.max_depth:
            raise _NotPlain
        max_chars = self.max_chars
        out = {}
        for key, item in value.items():
            if type(key) is not str or len(key) > max_chars or (not key.isascii() and _SURROGATE.search(key)):
                raise _NotPlain
            self.budget -= 1
            kind = type(item)
            if kind is str and len(item) <= max_chars and item.isascii():  # most values
                out[key] = item
            elif kind is dict:
                out[key] = self.mapping(item, depth + 1)
            elif kind is list:
                out[key] = self.sequence(item, depth + 1)
            else:
                out[key] = self.scalar(item, kind)
        if self.budget < 0:
            raise _NotPlain
        return out

    def sequence(self, value: list[Any], depth: int) -> list[Any]:
        """A list (already counted); a list of dicts (the requests, the history) without a call per item."""
        if depth > self.max_depth:
            raise _NotPlain
        out = []
        for item in value:
            if type(item) is dict:
                self.budget -= 1
                out.append(self.mapping(item, depth + 1))
            else:
                out.append(self.value(item, depth + 1))
        if self.budget < 0:
            raise _NotPlain
        return out

    def scalar(self, value: Any, kind: type) -> Any:
        """A value that is neither a dict nor a list (already counted)."""
        if kind is str:
            if len(value) > self.max_chars or (not value.isascii() and _SURROGATE.search(value)):
                raise _NotPlain
            return value
        if kind is int:
            if not -self.largest < value < self.largest:
                raise _NotPlain
            return value
        if kind is bool or value is None:
            return value
        if kind is float:
            self.found_float = True
            return value
        if kind is dt.date:
            return value.isoformat()
        raise _NotPlain


class _NotPlain(Exception):
    """Raised inside `plain_within` to leave the fast path."""


def _shape(data: Any, lim: Limits, at: list[str] | None) -> tuple[str, str] | None:
    """(limit name, what was over it) for the first problem in `data`; its path goes into `at`."""
    largest = 10**lim.max_integer_digits
    nodes = 0
    stack: list[tuple[Any, int, str]] = [(data, 1, "$")]
    while stack:
        value, depth, path = stack.pop()
        nodes += 1
        problem: tuple[str, str] | None = None
        kind = type(value)
        if nodes > lim.max_nodes:
            problem = ("max_nodes", f"the document has more than {lim.max_nodes:,} values")
        elif kind is str:
            if len(value) > lim.max_string_chars:
                problem = ("max_string_chars", f"a string has {len(value):,} characters")
            elif not value.isascii() and _SURROGATE.search(value):
                problem = ("text", "")
        elif kind is int:
            if not -largest < value < largest:
                problem = ("max_integer_digits", f"a whole number has more than {lim.max_integer_digits} digits")
        elif kind is dict or kind is list or isinstance(value, (dict, list)):
            if depth > lim.max_depth:
                problem = ("max_depth", f"the document nests mappings and lists deeper than {lim.max_depth} levels")
            elif isinstance(value, dict):
                for key, item in value.items():
                    if type(key) is str and (len(key) > lim.max_string_chars or _SURROGATE.search(key)):
                        stack.append((key, depth + 1, path))  # the key itself is never shown
                    stack.append((item, depth + 1, child_path(path, key) if at is not None else path))
            else:
                stack.extend(
                    (item, depth + 1, child_path(path, i) if at is not None else path) for i, item in enumerate(value)
                )
        if problem is not None:
            if at is not None:
                at.append(path)
            return problem
    return None


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

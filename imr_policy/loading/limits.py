"""How much input a parser accepts before it refuses: size, nesting depth, nodes, string length,
integer digits, YAML aliases, and how many errors one document may cost to explain.

Two sets of limits: `case` (every case, from a file, standard input, a corpus line, an HTTP body or a
Python dict) and `pack` (rule files, jurisdiction profiles and policy test files, which authors write and
which may use YAML anchors). Every limit can be changed with an environment variable named
`IMR_POLICY_<KIND>_<NAME>` (e.g. `IMR_POLICY_CASE_MAX_NODES=100000`); docs/limits.md lists them all.
A refusal is a diagnostic coded `<prefix>.limit` that names the limit and its value.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from functools import cache
from typing import Any, BinaryIO, Literal

from imr_policy.model.diagnostics import Diagnostic

Kind = Literal["case", "pack"]
DOCS = "docs/limits.md"


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds one parse works within. `max_alias_nodes` 0 refuses YAML anchors and aliases outright."""

    max_bytes: int  # UTF-8 bytes of one document (one file, one corpus line, one body)
    max_depth: int  # nested mappings and lists
    max_nodes: int  # values (mappings, lists, scalars), counted after YAML alias expansion
    max_string_chars: int  # characters of one string (keys included)
    max_integer_digits: int  # digits of one integer
    max_alias_nodes: int  # nodes YAML aliases may add by expansion; 0 refuses anchors and aliases
    max_errors: int  # problems looked for and worded per document; past it, the stage stops looking

    def exceeded(
        self,
        name: str,
        what: str,
        *,
        prefix: str,
        path: str = "$",
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> Diagnostic:
        """The diagnostic for input over the limit `name` (`what` says what was over it)."""
        kind: Kind = "case" if prefix == "case" else "pack"
        return Diagnostic(
            code=f"{prefix}.limit",
            message=f"{what}; the limit `{kind}.{name}` is {getattr(self, name):,}",
            path=path,
            file=file,
            line=line,
            column=column,
            hint=f"make the input smaller; an operator can raise the limit with {env_name(kind, name)} ({DOCS})",
        )


DEFAULTS: dict[Kind, Limits] = {
    # A case: the largest field a case may have is a 100,000-character progress note (case.schema.json);
    # the service's body limit is 1 MiB too. Cases need no YAML anchors, so aliases are refused.
    "case": Limits(
        max_bytes=1024 * 1024,
        max_depth=32,
        max_nodes=50_000,
        max_string_chars=200_000,
        max_integer_digits=20,
        max_alias_nodes=0,
        max_errors=1000,
    ),
    # A rule file or policy test: larger, and anchors are allowed, with their expansion bounded.
    "pack": Limits(
        max_bytes=8 * 1024 * 1024,
        max_depth=64,
        max_nodes=500_000,
        max_string_chars=200_000,
        max_integer_digits=20,
        max_alias_nodes=50_000,
        max_errors=1000,
    ),
}


def env_name(kind: Kind, name: str) -> str:
    return f"IMR_POLICY_{kind.upper()}_{name.upper()}"


class LimitsConfigError(ValueError):
    """An IMR_POLICY_* limit variable that is not a whole number in range."""


@cache
def _from_env(kind: Kind, raw: tuple[tuple[str, str], ...]) -> Limits:
    changes: dict[str, Any] = {}
    for name, value in raw:
        try:
            number = int(value.strip().replace("_", ""))
        except ValueError:
            number = -1
        least = 0 if name == "max_alias_nodes" else 1
        if number < least or len(value) > 19:
            raise LimitsConfigError(f"{env_name(kind, name)} must be a whole number of at least {least}, got `{value}`")
        changes[name] = number
    return replace(DEFAULTS[kind], **changes)


def limits(kind: Kind) -> Limits:
    """The limits in force for `kind`: the defaults, changed by any IMR_POLICY_<KIND>_<NAME> variable."""
    environ = os.environ
    data = getattr(environ, "_data", None)
    if type(data) is dict:  # CPython: os.environ's own dict, under encoded names (no KeyError per unset name)
        raw = tuple((name, environ[env]) for name, env, key in _ENV_NAMES[kind] if key in data)
    else:  # pragma: no cover - an os.environ without `_data`
        raw = tuple((name, environ[env]) for name, env, _ in _ENV_NAMES[kind] if env in environ)
    return _from_env(kind, raw) if raw else DEFAULTS[kind]


def _encoded(env: str) -> object:
    """The name as os.environ keeps it in its `_data` (bytes on POSIX, upper case on Windows)."""
    encode = getattr(os.environ, "encodekey", None)
    return encode(env) if encode is not None else env


# read on every case (the environment may change between calls): the variable names are built once
_ENV_NAMES: dict[Kind, tuple[tuple[str, str, object], ...]] = {
    kind: tuple((f.name, env_name(kind, f.name), _encoded(env_name(kind, f.name))) for f in fields(Limits))
    for kind in DEFAULTS
}


def for_prefix(prefix: str) -> Limits:
    """Cases (`case.*` diagnostics) get the case limits; rule files and policy tests the pack limits."""
    return limits("case" if prefix == "case" else "pack")


class TooLarge(Exception):
    """A file or stream over `max_bytes`; `diagnostic` words it for the file at hand."""

    def __init__(self, limit: Limits, size: int | None) -> None:
        super().__init__("over the size limit")
        self.limit = limit
        self.size = size

    def refusal(self, *, prefix: str, file: str | None, line: int | None = None) -> Diagnostic:
        what = f"the input has {self.size:,} bytes" if self.size else "the input has more bytes than allowed"
        return self.limit.exceeded("max_bytes", what, prefix=prefix, file=file, line=line)


def read_limited(source: str | os.PathLike[str] | BinaryIO, limit: Limits) -> bytes:
    """The bytes of a file (a path, or an open binary stream such as standard input), reading at most one
    byte more than `limit.max_bytes`; raises TooLarge past it, so a huge file is never read whole."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as fh:  # noqa: PTH123 - a path or a stream, one code path
            size = os.fstat(fh.fileno()).st_size
            if size > limit.max_bytes:
                raise TooLarge(limit, size)
            raw = fh.read(limit.max_bytes + 1)
    else:
        raw = source.read(limit.max_bytes + 1)
    if len(raw) > limit.max_bytes:
        raise TooLarge(limit, None)
    return raw


def check_environment() -> str | None:
    """None when every IMR_POLICY_* limit variable is valid, else the message for the first that is not."""
    try:
        limits("case")
        limits("pack")
    except LimitsConfigError as exc:
        return str(exc)
    return None


__all__ = [
    "DEFAULTS",
    "Limits",
    "LimitsConfigError",
    "TooLarge",
    "check_environment",
    "env_name",
    "for_prefix",
    "limits",
    "read_limited",
]

"""Rule files -> validated Editions, or every problem found in them.

Stages, in order (each runs on what the previous one accepted, so one mistake is reported once):

1. parse      YAML with a source map; syntax errors and duplicate keys (yamlsrc)
2. schema     JSON Schema `schemas/policy.schema.json`: unknown keys, types, enums, required fields
3. semantics  references (citations, limits, rules), facts and their types, outcome shapes
4. set        across files: duplicate editions, overlapping effective dates of one guideline
5. engine     the hard limits of durable_rules, so a rule file can never hang or crash the engine

Nothing stops at the first problem: `load_editions` reports every diagnostic of every file at once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import itertools
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imr_policy.language.conditions import ICD9_PREFIX, ICD10_PREFIX, tokens
from imr_policy.language.facts import (
    FACT_UNIT_KINDS,
    FACTS,
    OPERATORS,
    ORDERED_OPS,
    PREDICATE_OPS,
    PRESENCE_OPS,
    SET_OPS,
    UNIT_KINDS,
    FactType,
)
from imr_policy.loading.limits import TooLarge, for_prefix, read_limited
from imr_policy.loading.packformat import normalize
from imr_policy.loading.procedure import Procedure, check_procedure_set, check_procedure_text, is_procedure
from imr_policy.loading.schemacheck import fast_validator, float_diagnostics, schema_diagnostics
from imr_policy.loading.sequence import Profile, check_profile_text
from imr_policy.loading.yamlsrc import SourceMap, load_text, located
from imr_policy.model.diagnostics import (
    Diagnostic,
    Severity,
    did_you_mean,
    has_errors,
    rename,
    rename_text,
    sort_and_cap,
)
from imr_policy.model.values import (
    AnyOf,
    Citation,
    Clause,
    Condition,
    ConditionRow,
    CountedTogether,
    Edition,
    Invariant,
    Limit,
    NotOf,
    Outcome,
    RegionRows,
    RowNumbers,
    RowProcedures,
    Rule,
    RuleException,
    SeverityScale,
    Silence,
    UnnamedCondition,
    UnnamedProcedure,
    leaves,
)

# durable_rules limits (docs/architecture.md): 256 rules may end on one shared node, 64 alpha nodes may
# match one message. Staying well inside them keeps every shipped or authored pack loadable and safe.
MAX_RULES_PER_EDITION = 200
MAX_CONDITIONS_PER_SERVICE = 48
MAX_CONDITIONS_PER_RULE = 24
# `any:` and `not:` nest at most this deep, and a rule's conditions expand to at most this many
# alternatives (durable_rules expands every `$or` into its own chain of nodes)
MAX_CLAUSE_DEPTH = 3
MAX_ALTERNATIVES = 16


@dataclass(frozen=True, slots=True)
class LoadResult:
    editions: tuple[Edition, ...]
    diagnostics: tuple[Diagnostic, ...]
    files: tuple[str, ...]
    profiles: tuple[Profile, ...] = ()
    procedures: tuple[Procedure, ...] = ()  # UR procedural packs (imr_policy/loading/procedure.py)

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)

    @property
    def content_hash(self) -> str:
        digest = hashlib.sha256()
        for sha in sorted(
            [
                *(e.sha256 for e in self.editions),
                *(p.sha256 for p in self.profiles),
                *(p.sha256 for p in self.procedures),
            ]
        ):
            digest.update(sha.encode())
        return "sha256:" + digest.hexdigest()


def discover(paths: list[Path]) -> list[Path]:
    """Rule files under `paths` (files or directories), jurisdiction profiles included.

    `tests/` folders hold policy tests, not rules."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.suffix in (".yaml", ".yml")
                and "tests" not in p.relative_to(path).parts[:-1]
                and not p.relative_to(path).parts[0].startswith(".")
            )
        else:
            found.append(path)
    return found


def load_editions(paths: list[Path], *, display_root: Path | None = None) -> LoadResult:
    """Load and validate every rule file under `paths`."""
    files = discover(paths)
    diagnostics: list[Diagnostic] = []
    editions: list[Edition] = []
    profiles: list[Profile] = []
    procedures: list[Procedure] = []
    procedure_maps: dict[str, SourceMap | None] = {}
    maps: dict[str, SourceMap] = {}
    checkable: list[Edition] = []  # valid editions, and those whose valid parts the set checks can use
    if not files:
        where = ", ".join(f"`{p}`" for p in paths)
        diagnostics.append(
            Diagnostic(
                code="policy.no-files",
                message=f"no rule files found in {where}" if paths else "no rule files given",
                hint="rule files end in .yaml and live under policies/<guideline>/",
            )
        )
    for file in files:
        shown = _display(file, display_root)
        try:
            raw = read_limited(file, for_prefix("policy"))
            text = raw.decode("utf-8")
        except TooLarge as exc:
            diagnostics.append(exc.refusal(prefix="policy", file=shown))
            continue
        except UnicodeDecodeError as exc:
            diagnostics.append(
                Diagnostic(
                    code="policy.unreadable",
                    message=f"cannot read the file: it is not UTF-8 text (byte {exc.start})",
                    file=shown,
                    hint="save the file as UTF-8",
                )
            )
            continue
        except OSError as exc:
            reason = (exc.strerror or "unknown error").lower()
            diagnostics.append(
                Diagnostic(
                    code="policy.unreadable",
                    message=f"cannot read the file: {reason}",
                    file=shown,
                    hint="check the path and the file's permissions",
                )
            )
            continue
        sha = hashlib.sha256(raw).hexdigest()
        if is_profile(file, text):
            profile, found = check_profile_text(text, file=shown, sha256=sha)
            diagnostics.extend(found)
            if profile is not None:
                profiles.append(profile)
            continue
        if is_procedure(file.parent.name, text):
            procedure, found, pmap = check_procedure_text(text, file=shown, sha256=sha)
            diagnostics.extend(found)
            procedure_maps[shown] = pmap
            if procedure is not None:
                procedures.append(procedure)
            continue
        edition, partial, problems, smap = _check_text(text, file=shown, sha256=sha)
        diagnostics.extend(problems)
        maps[shown] = smap
        if edition is not None:
            editions.append(edition)
        if partial is not None:
            checkable.append(partial)
    diagnostics.extend(_check_set(checkable, maps))
    diagnostics.extend(check_procedure_set(procedures, procedure_maps))
    return LoadResult(
        tuple(editions),
        sort_and_cap(diagnostics),
        tuple(_display(f, display_root) for f in files),
        tuple(profiles),
        tuple(procedures),
    )


def is_profile(file: Path, text: str) -> bool:
    """Jurisdiction profiles live in `jurisdictions/` or declare their schema for editors."""
    head = text[:2000]
    return file.parent.name == "jurisdictions" or "schemas/jurisdiction.schema.json" in head


def _display(file: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return str(file.resolve().relative_to(root.resolve()))
        except ValueError:
            pass
    return str(file)


def check_text(text: str, *, file: str, sha256: str = "") -> tuple[Edition | None, list[Diagnostic], SourceMap]:
    """Validate one rule file's text. Returns the Edition only when the file has no errors."""
    edition, _, problems, smap = _check_text(text, file=file, sha256=sha256)
    return edition, problems, smap


def _check_text(
    text: str, *, file: str, sha256: str = ""
) -> tuple[Edition | None, Edition | None, list[Diagnostic], SourceMap]:
    """(the Edition when the file has no errors, the Edition its valid parts describe for the checks across
    files when its `guideline:` and `edition:` blocks are sound, every problem, the source map).

    Every stage runs on whatever is valid enough: schema errors inside entries of the lists (a rule, a
    limit, a citation, ...) leave those entries out, and the semantic checks run on the rest, so one
    `validate` run reports every problem of the file (issue 14.2)."""
    loaded = load_text(text, file=file, code_prefix="policy")
    problems = list(loaded.diagnostics)
    if loaded.data is None or problems:
        return None, None, problems, loaded.source_map
    if _is_case(loaded.data):
        return None, None, [_case_file(file, loaded.source_map)], loaded.source_map
    sha = sha256 or hashlib.sha256(text.encode()).hexdigest()
    schema_problems = schema_diagnostics(
        "policy", loaded.data, prefix="policy.schema", file=file, source_map=loaded.source_map
    )
    reported = {d.path for d in schema_problems}
    schema_problems += [
        d
        for d in float_diagnostics(loaded.data, prefix="policy.schema", file=file, source_map=loaded.source_map)
        if d.path not in reported  # one problem, one diagnostic: the schema's message wins
    ]
    if schema_problems:
        partial = _valid_parts(loaded.data, schema_problems, file, loaded.source_map, sha)
        if partial is None:
            return None, None, schema_problems, loaded.source_map
        edition, more = partial
        return None, _set_checkable(edition, more), schema_problems + more, loaded.source_map
    edition, problems = _semantics(loaded.data, file, loaded.source_map, sha)
    valid = edition if not has_errors(problems) else None
    return valid, _set_checkable(edition, problems), problems, loaded.source_map


def _semantics(data: dict[str, Any], file: str, smap: SourceMap, sha256: str) -> tuple[Edition, list[Diagnostic]]:
    """The semantic checks of a schema-valid document of either format (imr_policy.loading.packformat), with every
    problem at the path and line of the file as written."""
    norm = normalize(data)
    problems = [
        located(p.code, p.message, p.path, file=file, source_map=smap, hint=p.hint, severity=p.severity)
        for p in norm.problems
    ]
    checker = _Semantics(norm.data, file, smap, norm.renames)
    edition = checker.run(sha256)
    if norm.renames or data.get("format") == 2:
        edition = dataclasses.replace(edition, format=int(data.get("format", 1)), paths=tuple(norm.renames.items()))
    return edition, problems + checker.problems


_CASE_KEYS = frozenset({"case_id", "date_of_injury", "requests", "diagnoses", "history", "utilization_review"})
_PACK_KEYS = frozenset({"format", "guideline", "edition", "rules", "citations", "limits"})


def _is_case(data: Any) -> bool:
    """A case file given to `validate` by mistake: case keys (`case_id`, `requests`, ...) and no rule-pack key."""
    return isinstance(data, dict) and not (_PACK_KEYS & data.keys()) and len(_CASE_KEYS & data.keys()) >= 2


def _case_file(file: str, smap: SourceMap) -> Diagnostic:
    return located(
        "policy.case-file",
        "this is a case file, not a rule pack: it has the fields of a case (`case_id`, `requests`, ...) and "
        "none of a rule pack",
        "$",
        file=file,
        source_map=smap,
        hint="`imr-policy validate` checks rule packs; decide a case with `imr-policy evaluate FILE` "
        "(it checks the case first), or give `validate` the policies/ directory",
    )


def _set_checkable(edition: Edition, problems: list[Diagnostic]) -> Edition | None:
    """An edition whose dates are sound enough for the checks across files (overlaps, duplicates)."""
    bad = any(d.severity is Severity.ERROR and d.path.startswith("$.edition") for d in problems)
    return None if bad else edition


_MEASURES = {"count": "a count of visits or sessions", "months": "in months", "years": "in years"}
_LISTS = ("citations", "limits", "conditions", "rules", "exceptions", "silent_on", "invariants", "severity_scales")
# an entry of a list: `$.rules[3]`, or a row of a format-2 decision, `$.decisions[1].rules[0]`
_ENTRY = re.compile(r"\$\.(decisions\[\d+\]\.rules|" + "|".join(_LISTS) + r")\[(\d+)\]")


def _entries(data: dict[str, Any], section: str) -> Any:
    """The list at `section` (`rules`, or `decisions[1].rules`), or None."""
    if section.startswith("decisions["):
        index = int(section[len("decisions[") : section.index("]")])
        decisions = data.get("decisions")
        if not isinstance(decisions, list) or index >= len(decisions) or not isinstance(decisions[index], dict):
            return None
        return decisions[index].get("rules")
    return data.get(section)


def _with_entries(kept: dict[str, Any], section: str, entries: list[Any]) -> None:
    if section.startswith("decisions["):
        index = int(section[len("decisions[") : section.index("]")])
        decisions = list(kept["decisions"])
        decisions[index] = {**decisions[index], "rules": entries}
        kept["decisions"] = decisions
    else:
        kept[section] = entries


# semantic codes that may only say that an entry left out for its schema errors is missing
_REFERENCES = frozenset(
    {
        "policy.unknown-citation",
        "policy.unknown-limit",
        "policy.unknown-condition",
        "policy.unknown-exception",
        "policy.exception-unknown-rule",
    }
)
_UNUSED = frozenset({"policy.unused-citation", "policy.unused-limit"})


def _valid_parts(
    data: dict[str, Any], schema_problems: list[Diagnostic], file: str, smap: SourceMap, sha256: str
) -> tuple[Edition, list[Diagnostic]] | None:
    """The semantic checks of the entries without schema errors: (the edition they describe, their
    problems, at the paths and lines of the file as written). None when a schema error lies outside the
    entries of the lists (the file's frame: `guideline:`, `edition:`, a list itself), or when leaving the
    broken entries out does not give a schema-valid file."""
    broken: dict[str, set[int]] = defaultdict(set)
    for d in schema_problems:
        found = _ENTRY.match(d.path)
        if found is None or d.code == "diagnostics.capped":
            return None
        broken[found[1]].add(int(found[2]))
    kept = dict(data)
    keep: dict[str, list[int]] = {}
    left_out: set[str] = set()
    tables_left_out = False  # a `table:` entry left out: the rows' numbers it reads are not unread
    for section, bad in broken.items():
        entries = _entries(data, section)
        if not isinstance(entries, list):
            return None
        keep[section] = [i for i in range(len(entries)) if i not in bad]
        _with_entries(kept, section, [entries[i] for i in keep[section]])
        left_out.update(
            str(entries[i]["id"])
            for i in bad
            if i < len(entries) and isinstance(entries[i], dict) and "id" in entries[i]
        )
        tables_left_out = tables_left_out or any(
            i < len(entries) and isinstance(entries[i], dict) and "table" in entries[i] for i in bad
        )
    if not fast_validator("policy").is_valid(kept) or float_diagnostics(kept, prefix="policy.schema"):
        return None
    forward = {section: {old: new for new, old in enumerate(olds)} for section, olds in keep.items()}

    def to_kept(path: str) -> str | None:
        found = _ENTRY.match(path)
        if found is None or found[1] not in forward:
            return path
        new = forward[found[1]].get(int(found[2]))
        return None if new is None else f"$.{found[1]}[{new}]" + path[found.end() :]

    def to_file(text: str) -> str:
        return _ENTRY.sub(
            lambda m: f"$.{m[1]}[{keep[m[1]][int(m[2])]}]" if m[1] in keep else m[0],
            text,
        )

    shifted = SourceMap(
        {q: v for p, v in smap.values.items() if (q := to_kept(p)) is not None},
        {q: v for p, v in smap.keys.items() if (q := to_kept(p)) is not None},
    )
    edition, checked = _semantics(kept, file, shifted, sha256)
    mentioned = re.compile(r"`([^`]*)`")
    problems = [
        dataclasses.replace(d, path=to_file(d.path), message=to_file(d.message))
        for d in checked
        if d.code not in _UNUSED
        and not (d.code == "policy.table-unread" and tables_left_out)
        and not (d.code in _REFERENCES and any(m in left_out for m in mentioned.findall(d.message)))
    ]
    return edition, problems


def _raw_leaves(raw: Any, path: str) -> Iterator[tuple[dict[str, Any], str]]:
    """The raw conditions of a `when` list and their paths, inside `any:` and `not:` too."""
    if not isinstance(raw, list):
        return
    for j, c in enumerate(raw):
        yield from _raw_clause_leaves(c, f"{path}[{j}]")


def _raw_clause_leaves(c: Any, here: str) -> Iterator[tuple[dict[str, Any], str]]:
    if not isinstance(c, dict):
        return
    if "any" in c:
        yield from _raw_leaves(c["any"], f"{here}.any")
    elif "not" in c:
        yield from _raw_clause_leaves(c["not"], f"{here}.not")
    else:
        yield c, here


def _leaf_count(raw: Any) -> int:
    """The conditions in a raw clause, however nested (a bound checked before anything is built)."""
    if isinstance(raw, dict) and "any" in raw and isinstance(raw["any"], list):
        return sum(_leaf_count(x) for x in raw["any"])
    if isinstance(raw, dict) and "not" in raw:
        return _leaf_count(raw["not"])
    return 1


def _alternatives(clauses: tuple[Clause, ...], negated: bool = False) -> int:
    """How many conjunctions the clauses expand to once negations reach the conditions (the `$or`s that
    durable_rules expands): a negated condition is two (absent, or the complement)."""
    total = 1
    for c in clauses:
        total *= _alternatives_of(c, negated)
    return total


def _alternatives_of(c: Clause, negated: bool) -> int:
    if isinstance(c, Condition):
        return 2 if negated and c.op not in ("present", "absent", "prefix_in", "contains_any") else 1
    if isinstance(c, NotOf):
        return _alternatives_of(c.clause, not negated)
    if negated:  # not(any(a, b)) = not a and not b
        return _alternatives(c.clauses, True)
    return sum(_alternatives_of(x, False) for x in c.clauses)


class _Semantics:
    """Checks that need more than the schema: references, facts, types, outcome shapes, engine limits."""

    def __init__(
        self, data: dict[str, Any], file: str, smap: SourceMap, renames: Mapping[str, str] | None = None
    ) -> None:
        self.data = data
        self.file = file
        self.smap = smap
        self.renames = renames or {}  # internal paths -> the file's (format 2: imr_policy.loading.packformat)
        self.problems: list[Diagnostic] = []
        self.condition_ids: list[str] = []  # the edition's condition rows: the values of the `condition` fact
        self.citations: dict[str, dict[str, Any]] = {}
        self.limits: dict[str, dict[str, Any]] = {}
        self.used_citations: set[str] = set()
        self.used_limits: set[str] = set()

    def _within(self, effective: dict[str, Any]) -> tuple[str, dt.date | None, dt.date | None] | None:
        """The edition's second window (`effective.within`), checked; None without one."""
        if "within" not in effective:
            return None
        ((key, window),) = effective["within"].items()
        start = dt.date.fromisoformat(window["from"]) if "from" in window else None
        end = dt.date.fromisoformat(window["to"]) if "to" in window else None
        if key == effective["selected_by"]:
            self.report(
                "policy.within-same-key",
                f"`within` gives a second window on `{key}`, the date the edition is already selected by",
                f"$.edition.effective.within.{key}",
                hint="put the days in `from`/`to`; `within` bounds the other date",
            )
        if start is not None and end is not None and end < start:
            self.report(
                "policy.effective-range",
                f"the `within` window ends (`{window['to']}`) before it starts (`{window['from']}`)",
                f"$.edition.effective.within.{key}.to",
                hint="`from` and `to` are both inclusive; swap them or fix the year",
            )
        return key, start, end

    def report(
        self,
        code: str,
        message: str,
        path: str,
        *,
        hint: str | None = None,
        severity: Severity = Severity.ERROR,
    ) -> None:
        if self.renames:
            path, message = rename(path, self.renames), rename_text(message, self.renames)
        self.problems.append(
            located(code, message, path, file=self.file, source_map=self.smap, hint=hint, severity=severity)
        )

    def _unique(self, items: list[dict[str, Any]], base: str, code: str, what: str) -> dict[str, int]:
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            if item["id"] in seen:
                self.report(
                    code,
                    f"duplicate {what} id `{item['id']}` (first at {base}[{seen[item['id']]}])",
                    f"{base}[{i}].id",
                    hint=f"each {what} needs its own id",
                )
            else:
                seen[item["id"]] = i
        return seen

    def run(self, sha256: str) -> Edition:
        d = self.data
        self._index_ids()
        effective = d["edition"]["effective"]
        start, end, within = self._effective(effective)
        self._check_limits()
        condition_rows = self._condition_rows(d.get("conditions", []))
        unnamed = self._unnamed_condition(d.get("unnamed_condition"), condition_rows)
        counted = self._counted_together()
        self._units(d, {lim["id"]: lim for lim in d.get("limits", [])})
        rules = self._rules()
        procedures = self._unnamed_procedure(d.get("unnamed_procedure"), condition_rows, rules)
        exceptions = self._exceptions(rules)
        silences = self._silences(rules)
        scales = self._severity_scales()
        invariants = self._invariants()
        self._unused()
        self._engine_limits(rules, exceptions)
        self._scope(rules, silences)
        g, ed = d["guideline"], d["edition"]
        return Edition(
            guideline_id=g["id"],
            guideline_title=g["title"],
            family=g["family"],
            tier=g["tier"],
            jurisdictions=tuple(g.get("jurisdictions", ["CA"])),
            scope=tuple(g.get("scope", ())),
            edition_id=str(ed["id"]),
            edition_title=ed["title"],
            effective_from=start,
            effective_to=end,
            selected_by=effective["selected_by"],
            within=within,
            citations=tuple(
                Citation(c["id"], c["section"], c["pages"], c["quote"].strip(), c["provenance"], c["source"])
                for c in d["citations"]
            ),
            limits=tuple(_limit(lim) for lim in d.get("limits", [])),
            rules=tuple(rules),
            exceptions=tuple(exceptions),
            file=self.file,
            sha256=sha256,
            silent_on=tuple(silences),
            invariants=tuple(invariants),
            more_permissive_than_previous=ed.get("more_permissive_than_previous", False),
            conditions=condition_rows,
            unnamed_condition=unnamed,
            unnamed_procedure=procedures,
            counted_together=counted,
            severity_scales=tuple(scales),
            hit_policies=tuple(sorted(d.get("hit_policies", {}).items())),
        )

    def _scope(self, rules: list[Rule], silences: list[Silence]) -> None:
        """With `guideline.scope`, every rule and silence is for a service in it (no other is ever consulted)."""
        scope = self.data["guideline"].get("scope")
        if not scope:
            return
        for i, rule in enumerate(rules):
            for j, service in enumerate(rule.services):
                if service not in scope:
                    self.report(
                        "policy.outside-scope",
                        f"rule `{rule.id}` decides `{service}`, which the guideline's `scope` leaves out, so it "
                        "would never be consulted",
                        f"$.rules[{i}].services[{j}]",
                        hint=f"add `{service}` to `guideline.scope`, or remove the rule",
                    )
        for i, silence in enumerate(silences):
            if silence.service not in scope:
                self.report(
                    "policy.outside-scope",
                    f"`silent_on` names `{silence.service}`, which the guideline's `scope` leaves out",
                    f"$.silent_on[{i}].service",
                    hint=f"add `{silence.service}` to `guideline.scope`, or remove the entry",
                )

    def _index_ids(self) -> None:
        """Citations, limits, rules and exceptions by id; each id once (rules and exceptions share one
        namespace: traces and diffs name both by id)."""
        d = self.data
        self.citations = {c["id"]: c for c in d["citations"]}
        self._unique(d["citations"], "$.citations", "policy.duplicate-id", "citation")
        limits_raw = d.get("limits", [])
        self._unique(limits_raw, "$.limits", "policy.duplicate-id", "limit")
        self.limits = {lim["id"]: lim for lim in limits_raw}
        rule_index = self._unique(d["rules"], "$.rules", "policy.duplicate-rule-id", "rule")
        exception_index: dict[str, int] = {}
        for i, e in enumerate(d.get("exceptions", [])):
            if e["id"] in rule_index or e["id"] in exception_index:
                first = (
                    f"$.rules[{rule_index[e['id']]}]"
                    if e["id"] in rule_index
                    else f"$.exceptions[{exception_index[e['id']]}]"
                )
                self.report(
                    "policy.duplicate-rule-id",
                    f"duplicate rule id `{e['id']}` (first at {first})",
                    f"$.exceptions[{i}].id",
                    hint="rules and exceptions share one set of ids; rename the exception",
                )
            else:
                exception_index[e["id"]] = i

    def _effective(
        self, effective: dict[str, Any]
    ) -> tuple[dt.date, dt.date | None, tuple[str, dt.date | None, dt.date | None] | None]:
        """The edition's window (`from`, `to`) and its second window (`within`), checked."""
        start = dt.date.fromisoformat(effective["from"])
        end = dt.date.fromisoformat(effective["to"]) if effective["to"] else None
        within = self._within(effective)
        if end is not None and end < start:
            self.report(
                "policy.effective-range",
                f"the edition ends (`{effective['to']}`) before it starts (`{effective['from']}`)",
                "$.edition.effective.to",
                hint="`from` and `to` are both inclusive; swap them or fix the year",
            )
        return start, end, within

    def _cite(self, cid: str, path: str) -> None:
        self.used_citations.add(cid)
        if cid not in self.citations:
            self.report(
                "policy.unknown-citation",
                f"citation `{cid}` is not defined in this file",
                path,
                hint=did_you_mean(cid, self.citations) or "add it under `citations:`",
            )

    def _limit_ref(self, lid: str | None, path: str) -> None:
        if lid is None:
            return
        self.used_limits.add(lid)
        if lid not in self.limits:
            self.report(
                "policy.unknown-limit",
                f"limit `{lid}` is not defined in this file",
                path,
                hint=did_you_mean(lid, self.limits) or "add it under `limits:` with its citation and provenance",
            )

    def _check_limits(self) -> None:
        for i, lim in enumerate(self.data.get("limits", [])):
            self._cite(lim["citation"], f"$.limits[{i}].citation")
            rng = lim.get("range")
            if rng and not (rng[0] <= lim["value"] <= rng[1]):
                self.report(
                    "policy.limit-outside-range",
                    f"value `{lim['value']}` lies outside its stated range `{rng[0]}-{rng[1]}`",
                    f"$.limits[{i}].value",
                    hint="`value` is the number rules use; it must be one of the range the guideline states",
                )

    def _rules(self) -> list[Rule]:
        rules: list[Rule] = []
        for i, r in enumerate(self.data["rules"]):
            base = f"$.rules[{i}]"
            self._cite(r["citation"], f"{base}.citation")
            when = self._conditions(r["when"], f"{base}.when")
            outcome = self._outcome(r["outcome"], f"{base}.outcome")
            rules.append(
                Rule(
                    id=r["id"],
                    services=tuple(r["services"]),
                    citation=r["citation"],
                    when=when,
                    outcome=outcome,
                    description=r.get("description", ""),
                    provenance=r.get("provenance"),
                    overrides=tuple(r.get("overrides", ())),
                )
            )
        return rules

    def _exceptions(self, rules: list[Rule]) -> list[RuleException]:
        """Each exception: its citation, the rules it raises (which must exist and have a total limit), its
        conditions."""
        rule_ids = [r["id"] for r in self.data["rules"]]
        exceptions: list[RuleException] = []
        for i, e in enumerate(self.data.get("exceptions", [])):
            base = f"$.exceptions[{i}]"
            self._cite(e["citation"], f"{base}.citation")
            for j, target in enumerate(e["rules"]):
                if target not in rule_ids:
                    self.report(
                        "policy.exception-unknown-rule",
                        f"exception names rule `{target}`, which this file does not define",
                        f"{base}.rules[{j}]",
                        hint=did_you_mean(target, rule_ids) or "an exception must name the rules whose limit it raises",
                    )
                    continue
                target_rule = rules[rule_ids.index(target)]
                if target_rule.outcome.up_to_total is None:
                    self.report(
                        "policy.exception-not-raisable",
                        f"rule `{target}` has no `up_to.total` limit for this exception to raise",
                        f"{base}.rules[{j}]",
                        hint="exceptions raise the total limit of a certify rule",
                    )
            self._limit_ref(e["raises"]["total"], f"{base}.raises.total")
            when = self._conditions(e["when"], f"{base}.when")
            exceptions.append(_rule_exception(e, when))
        return exceptions

    def _silences(self, rules: list[Rule]) -> list[Silence]:
        """`silent_on`: services the guideline does not address, each once and none a rule decides."""
        silences: list[Silence] = []
        decided_services = {svc for r in rules for svc in r.services}
        seen_silent: set[str] = set()
        for i, item in enumerate(self.data.get("silent_on", [])):
            base = f"$.silent_on[{i}]"
            self._cite(item["citation"], f"{base}.citation")
            if item["service"] in decided_services:
                self.report(
                    "policy.silent-but-decided",
                    f"`{item['service']}` is listed as not addressed, but rules of this file decide it",
                    f"{base}.service",
                    hint="remove it from `silent_on`, or remove the rules",
                )
            if item["service"] in seen_silent:
                self.report(
                    "policy.duplicate-id",
                    f"`{item['service']}` is listed twice",
                    f"{base}.service",
                    hint="list each service once under `silent_on`",
                )
            seen_silent.add(item["service"])
            silences.append(Silence(item["service"], item["citation"]))
        return silences

    def _unnamed_reading(
        self,
        raw: dict[str, Any],
        rows: tuple[ConditionRow, ...],
        key: str,
        code: str,
        reads: str,
        words: tuple[str, str, str],
    ) -> None:
        """What `unnamed_condition:` and `unnamed_procedure:` share: a table to read, a citation, and words
        with letters or digits (`words`: what a word is matched against, what it names none of, an example)."""
        base = f"$.{key}"
        if not rows:
            self.report(
                code,
                f"`{key}` reads {reads}, but this edition has no `conditions:`",
                base,
                hint=f"add the table under `conditions:`, or remove `{key}`",
            )
        self._cite(raw["citation"], f"{base}.citation")
        against, names, example = words
        for j, word in enumerate(raw["words"]):
            if not tokens(word):
                self.report(
                    "policy.condition-without-match",
                    f"the word `{word}` has no letters or digits, so it matches no {against}",
                    f"{base}.words[{j}]",
                    hint=f"write words that name no {names}, e.g. `{example}`",
                )

    def _unnamed_condition(self, raw: dict[str, Any] | None, rows: tuple[ConditionRow, ...]) -> UnnamedCondition | None:
        """`unnamed_condition:`: rows of the table, each listed for body regions it applies to, every
        region in one group only, words with letters or digits."""
        if raw is None:
            return None
        base = "$.unnamed_condition"
        self._unnamed_reading(
            raw,
            rows,
            "unnamed_condition",
            "policy.unnamed-condition-without-table",
            "rows of the table by condition",
            ("description", "condition", "injury"),
        )
        grouped: dict[str, int] = {}
        groups: list[RegionRows] = []
        for i, group in enumerate(raw["regions"]):
            regions = tuple(" ".join(r.casefold().split()) for r in group["regions"])
            for j, region in enumerate(regions):
                if region in grouped:
                    self.report(
                        "policy.duplicate-region",
                        f"body region `{region}` is already listed (at {base}.regions[{grouped[region]}])",
                        f"{base}.regions[{i}].regions[{j}]",
                        hint="list each body region in one group, with every row read for it",
                    )
                grouped.setdefault(region, i)
            self._region_rows(group, regions, rows, f"{base}.regions[{i}]")
            groups.append(RegionRows(regions, tuple(group["rows"])))
        return UnnamedCondition(
            words=tuple(raw["words"]),
            regions=tuple(groups),
            citation=raw["citation"],
            provenance=raw["provenance"],
            note=" ".join(raw["note"].split()),
        )

    def _region_rows(
        self, group: dict[str, Any], regions: tuple[str, ...], rows: tuple[ConditionRow, ...], at: str
    ) -> None:
        """One group of `unnamed_condition.regions`: its rows exist and apply to its regions; rows of its
        regions that it neither reads nor leaves out on purpose (`not_read`) are a warning."""
        by_id = {r.id: r for r in rows}
        for j, row_id in enumerate(group["rows"]):
            path = f"{at}.rows[{j}]"
            row = by_id.get(row_id)
            if row is None and rows:  # (without a table, the one problem is reported above)
                self.report(
                    "policy.unknown-condition",
                    f"`{row_id}` is not a row of this edition's `conditions:` table",
                    path,
                    hint=did_you_mean(row_id, list(by_id)) or "add the row under `conditions:`",
                )
            elif row is not None and row.regions and not set(regions) <= set(row.regions):
                outside = sorted(set(regions) - set(row.regions))
                self.report(
                    "policy.unnamed-row-region",
                    f"row `{row_id}` is listed for {', '.join(f'`{r}`' for r in outside)}, which its "
                    "`regions` do not include, so it can never be read for such a request",
                    path,
                    hint="add the region to the row's `regions`, or list the row for its own regions only",
                )
        deliberate = set(group.get("not_read", []))
        for j, row_id in enumerate(group.get("not_read", [])):
            if rows and row_id not in by_id:
                self.report(
                    "policy.unknown-condition",
                    f"`{row_id}` is not a row of this edition's `conditions:` table",
                    f"{at}.not_read[{j}]",
                    hint=did_you_mean(row_id, list(by_id)) or "name a row of `conditions:`",
                )
        for row in rows:  # a row of the group's regions that is not read for them, and not said so
            if row.id not in group["rows"] and row.id not in deliberate and set(row.regions) & set(regions):
                shared = sorted(set(row.regions) & set(regions))
                self.report(
                    "policy.unnamed-condition-row-left-out",
                    f"row `{row.id}` applies to {', '.join(f'`{r}`' for r in shared)}, but is not read for "
                    "it when the diagnoses name no condition",
                    f"{at}.rows",
                    hint=f"add `{row.id}` to `rows`, or to `not_read` if an unnamed condition there cannot be it",
                    severity=Severity.WARNING,
                )

    def _unnamed_procedure(
        self, raw: dict[str, Any] | None, rows: tuple[ConditionRow, ...], rules: list[Rule]
    ) -> UnnamedProcedure | None:
        """`unnamed_procedure:`: rows of the table, each listed once, each procedure one that a
        post-surgical rule of the row reads (otherwise reading it would only repeat the records as they are)."""
        if raw is None:
            return None
        base = "$.unnamed_procedure"
        self._unnamed_reading(
            raw,
            rows,
            "unnamed_procedure",
            "policy.unnamed-procedure-without-table",
            "the post-surgical entries of rows of the table by condition",
            ("procedure", "procedure", "surgery"),
        )
        by_id = {r.id for r in rows}
        listed: dict[str, int] = {}
        entries: list[RowProcedures] = []
        for i, entry in enumerate(raw["rows"]):
            at, row = f"{base}.rows[{i}]", entry["row"]
            if row in listed:
                self.report(
                    "policy.unnamed-procedure-row-twice",
                    f"row `{row}` is already listed (at {base}.rows[{listed[row]}])",
                    f"{at}.row",
                    hint="list each row once, with every post-surgical entry the surgery can have been",
                )
            listed.setdefault(row, i)
            if rows and row not in by_id:
                self.report(
                    "policy.unknown-condition",
                    f"`{row}` is not a row of this edition's `conditions:` table",
                    f"{at}.row",
                    hint=did_you_mean(row, sorted(by_id)) or "name a row of `conditions:`",
                )
            read = _procedure_words_read(rules, row)
            for j, procedure in enumerate(entry["procedures"]):
                if row in by_id and not any(w.casefold() in procedure.casefold() for w in read):
                    self.report(
                        "policy.unnamed-procedure-unread",
                        f"no post-surgical rule of row `{row}` reads the procedure `{procedure}` (no rule tests "
                        "`condition` for the row and `postsurgical_procedure contains_any` a word of it)",
                        f"{at}.procedures[{j}]",
                        hint="name the procedure as a rule of the row reads it, or add the rule",
                    )
            entries.append(RowProcedures(row, tuple(entry["procedures"]), tuple(entry.get("words", ()))))
        return UnnamedProcedure(
            words=tuple(raw["words"]),
            rows=tuple(entries),
            citation=raw["citation"],
            provenance=raw["provenance"],
            note=" ".join(raw["note"].split()),
        )

    def _services_once(self, section: str, code: str, already: str, hint: str) -> list[dict[str, Any]]:
        """The entries of `section` (each with `services` and a `citation`), citations checked, each service
        in one entry at most (`code`; `already`: what the message says of a service listed again)."""
        entries: list[dict[str, Any]] = self.data.get(section, [])
        first: dict[str, int] = {}
        for i, entry in enumerate(entries):
            base = f"$.{section}[{i}]"
            self._cite(entry["citation"], f"{base}.citation")
            for j, service in enumerate(entry["services"]):
                if service in first:
                    self.report(
                        code,
                        f"`{service}` {already} (at $.{section}[{first[service]}])",
                        f"{base}.services[{j}]",
                        hint=hint,
                    )
                first.setdefault(service, i)
        return entries

    def _counted_together(self) -> tuple[CountedTogether, ...]:
        """`counted_together:`: each service in one group at most."""
        entries = self._services_once(
            "counted_together",
            "policy.duplicate-count-group",
            "is already in a group",
            "list each service in one group, with every service whose visits count with it",
        )
        return tuple(
            CountedTogether(tuple(g["services"]), g["citation"], " ".join(g.get("note", "").split())) for g in entries
        )

    def _severity_scales(self) -> list[SeverityScale]:
        entries = self._services_once(
            "severity_scales",
            "policy.duplicate-severity-scale",
            "already has a severity scale",
            "give each service one list of the severities the guideline distinguishes",
        )
        return [
            SeverityScale(
                tuple(sc["services"]), tuple(sc["values"]), sc["citation"], " ".join(sc.get("note", "").split())
            )
            for sc in entries
        ]

    def _invariants(self) -> list[Invariant]:
        invariants: list[Invariant] = []
        exception_ids = [e["id"] for e in self.data.get("exceptions", [])]
        for i, inv in enumerate(self.data.get("invariants", [])):
            base = f"$.invariants[{i}]"
            self._cite(inv["citation"], f"{base}.citation")
            for j, name in enumerate(inv.get("unless", [])):
                if name not in exception_ids:
                    self.report(
                        "policy.unknown-exception",
                        f"exception `{name}` is not defined in this file",
                        f"{base}.unless[{j}]",
                        hint=did_you_mean(name, exception_ids) or "name an exception of this file under `exceptions:`",
                    )
            invariants.append(
                Invariant(
                    id=inv["id"],
                    description=inv["description"],
                    kind=inv["kind"],
                    services=tuple(inv["services"]),
                    max=inv["max"],
                    citation=inv["citation"],
                    counts=inv.get("counts", "completed"),
                    unless=tuple(inv.get("unless", [])),
                )
            )
        return invariants

    def _unused(self) -> None:
        """Warnings for citations and limits nothing refers to (run after every reference is checked)."""
        for i, c in enumerate(self.data["citations"]):
            if c["id"] not in self.used_citations:
                self.report(
                    "policy.unused-citation",
                    f"citation `{c['id']}` is not used by any rule, limit or exception",
                    f"$.citations[{i}].id",
                    hint="remove it, or cite it where its text applies",
                    severity=Severity.WARNING,
                )
        for i, lim in enumerate(self.data.get("limits", [])):
            if lim["id"] not in self.used_limits:
                self.report(
                    "policy.unused-limit",
                    f"limit `{lim['id']}` is not used by any rule or exception",
                    f"$.limits[{i}].id",
                    hint="remove it, or use it in a condition, an outcome or an exception",
                    severity=Severity.WARNING,
                )

    def _units(self, d: dict[str, Any], limits: dict[str, dict[str, Any]]) -> None:
        """A limit compared with a fact measures what the fact measures (a count of visits or sessions, or
        months), and the limit an outcome or exception approves up to is a count: `policy.unit-mismatch`."""

        def check(lid: object, measures: str | None, path: str, what: str) -> None:
            lim = limits.get(lid) if isinstance(lid, str) else None
            if lim is None or measures is None or UNIT_KINDS.get(lim["unit"]) == measures:
                return
            self.report(
                "policy.unit-mismatch",
                f"limit `{lid}` is in {lim['unit']}, but {what} is {_MEASURES.get(measures, measures)}",
                path,
                hint="compare counts with limits in visits or sessions and durations with limits in their unit",
            )

        for kind in ("rules", "exceptions"):
            for i, entry in enumerate(d.get(kind, []) or []):
                if not isinstance(entry, dict):
                    continue
                for c, where in _raw_leaves(entry.get("when"), f"$.{kind}[{i}].when"):
                    if "limit" in c:
                        fact = c.get("fact")
                        measures = FACT_UNIT_KINDS.get(fact) if isinstance(fact, str) else None
                        check(c["limit"], measures, f"{where}.limit", f"`{fact}`")
                if kind == "exceptions":
                    raises = entry.get("raises")
                    if isinstance(raises, dict):
                        check(raises.get("total"), "count", f"$.exceptions[{i}].raises.total", "a total")
                    continue
                outcome = entry.get("outcome")
                if not isinstance(outcome, dict):
                    continue
                raw_up_to = outcome.get("up_to")
                up_to: dict[str, Any] = raw_up_to if isinstance(raw_up_to, dict) else {}
                for key in ("total", "per_request"):
                    if key in up_to:
                        check(up_to[key], "count", f"$.rules[{i}].outcome.up_to.{key}", "what is approved")
                if "ceiling" in outcome:
                    check(outcome["ceiling"], "count", f"$.rules[{i}].outcome.ceiling", "a ceiling of visits")

    def _condition_rows(self, raw: list[dict[str, Any]]) -> tuple[ConditionRow, ...]:
        """The `conditions:` table: unique ids, something to match by, code prefixes of the right form."""
        rows: list[ConditionRow] = []
        seen: dict[str, int] = {}
        for i, row in enumerate(raw):
            base = f"$.conditions[{i}]"
            if row["id"] in seen:
                self.report(
                    "policy.duplicate-condition",
                    f"duplicate condition row id `{row['id']}` (first at $.conditions[{seen[row['id']]}])",
                    f"{base}.id",
                    hint="each row of the table needs its own id",
                )
            else:
                seen[row["id"]] = i
            if row.get("citation") is not None:
                self._cite(row["citation"], f"{base}.citation")
            for key, form, example in (
                ("icd9", ICD9_PREFIX, "`847.2` or `722.1`"),
                ("icd10", ICD10_PREFIX, "`M54.16`"),
            ):
                system = "ICD-9-CM" if key == "icd9" else "ICD-10-CM"
                for j, prefix in enumerate(row.get(key, [])):
                    if not form.fullmatch(prefix):
                        self.report(
                            "policy.condition-code",
                            f"`{prefix}` is not the start of an {system} code",
                            f"{base}.{key}[{j}]",
                            hint=f"write {system} code prefixes as printed, e.g. {example}",
                        )
            words = row.get("words", [])
            regional = row.get("words_in_region", [])
            general = row.get("general_words", [])
            operative = row.get("procedure_words", [])
            for key, phrases in (
                ("words", words),
                ("words_in_region", regional),
                ("general_words", general),
                ("procedure_words", operative),
            ):
                for j, phrase in enumerate(phrases):
                    if not tokens(phrase):
                        self.report(
                            "policy.condition-without-match",
                            f"the phrase `{phrase}` has no letters or digits, so it matches no description",
                            f"{base}.{key}[{j}]",
                            hint="write the words that name the condition, e.g. `lumbar sprain`",
                        )
            if regional and not row.get("regions"):
                self.report(
                    "policy.words-in-region-without-regions",
                    f"condition row `{row['id']}` has `words_in_region` but no `regions`, so they can never match",
                    f"{base}.words_in_region",
                    hint="list the body regions these phrases name the condition in, or move them to `words`",
                )
            if not (row.get("icd9") or row.get("icd10") or words or regional or general or operative):
                self.report(
                    "policy.condition-without-match",
                    f"condition row `{row['id']}` has no `icd9`, `icd10` or `words`, so no case can match it",
                    f"{base}.id",
                    hint="add the codes the guideline gives for it, or the phrases that name it in records",
                )
            rows.append(
                ConditionRow(
                    id=row["id"],
                    title=" ".join(row["title"].split()),
                    regions=tuple(r.casefold() for r in row.get("regions", [])),
                    icd9=tuple(row.get("icd9", [])),
                    icd10=tuple(row.get("icd10", [])),
                    words=tuple(words),
                    citation=row.get("citation"),
                    note=" ".join(row.get("note", "").split()),
                    words_in_region=tuple(regional),
                    general_words=tuple(general),
                    procedure_words=tuple(operative),
                    medical=self._row_numbers(row.get("medical")),
                )
            )
        self.condition_ids = list(seen)
        return tuple(rows)

    def _row_numbers(self, raw: dict[str, Any] | None) -> RowNumbers | None:
        """A row's `medical:` (its limit counts as used: the rules a `table:` entry makes of it read it)."""
        if raw is None:
            return None
        self.used_limits.add(raw["limit"])
        return RowNumbers(raw["limit"], raw["over"])

    def _conditions(self, raw: list[dict[str, Any]], base: str) -> tuple[Clause, ...]:
        out: list[Clause] = []
        for i, c in enumerate(raw):
            clause = self._clause(c, f"{base}[{i}]", 1)
            if clause is not None:
                out.append(clause)
        count = sum(_leaf_count(c) for c in raw)
        if count > MAX_CONDITIONS_PER_RULE:
            self.report(
                "policy.engine-limit",
                f"{count} conditions in one rule; at most {MAX_CONDITIONS_PER_RULE} are allowed",
                base,
                hint="split the rule; durable_rules fails on long expression chains",
            )
        alternatives = _alternatives(tuple(out))
        if alternatives > MAX_ALTERNATIVES:
            self.report(
                "policy.engine-limit",
                f"the rule's `any:` and `not:` expand to {alternatives} alternatives; at most "
                f"{MAX_ALTERNATIVES} are allowed",
                base,
                hint="split the rule into rules with fewer alternatives, or test a set with `in`",
            )
        return tuple(out)

    def _clause(self, c: dict[str, Any], path: str, depth: int) -> Clause | None:
        """A condition, or an `any:` or `not:` of clauses (nested at most MAX_CLAUSE_DEPTH deep)."""
        if "any" not in c and "not" not in c:
            return self._condition(c, path)
        if depth > MAX_CLAUSE_DEPTH:
            self.report(
                "policy.engine-limit",
                f"`any:` and `not:` nest more than {MAX_CLAUSE_DEPTH} deep here",
                path,
                hint="write the condition more flatly, or split the rule",
            )
            return None
        if "not" in c:
            inner = self._clause(c["not"], f"{path}.not", depth + 1)
            return None if inner is None else NotOf(inner)
        parts = [self._clause(x, f"{path}.any[{j}]", depth + 1) for j, x in enumerate(c["any"])]
        if any(x is None for x in parts):
            return None
        return AnyOf(tuple(x for x in parts if x is not None))

    def _condition(self, c: dict[str, Any], path: str) -> Condition | None:
        name, op = c["fact"], c["op"]
        fact = FACTS.get(name)
        if fact is None:
            self.report(
                "policy.unknown-fact",
                f"`{name}` is not a fact of the case contract",
                f"{path}.fact",
                hint=did_you_mean(name, FACTS) or "facts are listed in docs/policy-authoring.md",
            )
            return None
        has_value, has_limit = "value" in c, "limit" in c
        if op in PRESENCE_OPS:
            if has_value or has_limit:
                self.report(
                    "policy.condition-operand",
                    f"`{op}` takes no `value` or `limit`",
                    path,
                    hint=f"remove `value`/`limit`; `{op}` only tests whether the fact is given",
                )
                return None
            return Condition(name, op)
        if has_value == has_limit:
            self.report(
                "policy.condition-operand",
                f"`{op}` needs exactly one of `value` or `limit`",
                path,
                hint="compare with a literal (`value: 4`) or a named number of this edition (`limit: trial-visits`)",
            )
            return None
        if has_limit:
            self._limit_ref(c["limit"], f"{path}.limit")
            if fact.type is not FactType.INTEGER or op in SET_OPS:
                self.report(
                    "policy.type-mismatch",
                    f"`{name}` cannot be compared with a limit using `{op}`; limits are counts",
                    f"{path}.limit",
                    hint="compare a count (`completed`, `total`, `quantity`) with `lt`, `lte`, `gt`, `gte` or `eq`",
                )
                return None
            return Condition(name, op, limit=c["limit"])
        value = c["value"]
        if op in PREDICATE_OPS or fact.type is FactType.CODES:
            return self._predicate(name, fact.type, op, value, path)
        if op in SET_OPS:
            if not isinstance(value, list) or not value:
                self.report(
                    "policy.condition-operand",
                    f"`{op}` needs a non-empty list as `value`",
                    f"{path}.value",
                    hint="write the values as a list, e.g. `value: [moderate, severe]`",
                )
                return None
            converted = [self._literal(fact, v, f"{path}.value[{j}]") for j, v in enumerate(value)]
            if any(v is _BAD for v in converted):
                return None
            return Condition(name, op, tuple(converted))
        if isinstance(value, list):
            self.report(
                "policy.condition-operand",
                f"`{op}` compares with one value, not a list",
                f"{path}.value",
                hint="use `in` to test membership",
            )
            return None
        if op in ORDERED_OPS and fact.type not in (FactType.INTEGER, FactType.DATE):
            self.report(
                "policy.type-mismatch",
                f"`{op}` orders numbers and dates; `{name}` is {fact.type.value}",
                f"{path}.op",
                hint="use `eq`, `ne`, `in` or `not_in`",
            )
            return None
        literal = self._literal(fact, value, f"{path}.value")
        return None if literal is _BAD else Condition(name, op, literal)

    def _predicate(self, name: str, kind: FactType, op: str, value: Any, path: str) -> Condition | None:
        wanted = OPERATORS[op].fact_type if op in OPERATORS else None  # what a predicate accepts
        if wanted is not kind:
            fix = "`prefix_in`" if kind is FactType.CODES else "`contains_any`" if kind is FactType.STRING else None
            self.report(
                "policy.type-mismatch",
                f"`{op}` does not apply to `{name}`, which is {kind.value}",
                f"{path}.op",
                hint=f"use {fix} with `{name}`" if fix else "use `eq`, `ne`, `in` or an ordering operator",
            )
            return None
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            self.report(
                "policy.condition-operand",
                f"`{op}` needs a non-empty list of non-empty strings as `value`",
                f"{path}.value",
                hint="e.g. `value: [M54.16, M54.17]` or `value: [meniscectomy]`",
            )
            return None
        if op == "prefix_in":
            icd9 = name == "icd9_codes"
            bad = [v for v in value if not (ICD9_PREFIX if icd9 else ICD10_PREFIX).fullmatch(v)]
            if bad:
                self.report(
                    "policy.type-mismatch",
                    f"`{bad[0]}` is not the start of an {'ICD-9-CM' if icd9 else 'ICD-10-CM'} code",
                    f"{path}.value[{value.index(bad[0])}]",
                    hint="write code prefixes as printed, e.g. "
                    + ("`847.2` or `722.1`" if icd9 else "`M54.1` or `G90.5`"),
                )
                return None
        return Condition(name, op, tuple(value))

    def _literal(self, fact: Any, value: Any, path: str) -> Any:
        kind = fact.type
        ok = (
            (kind is FactType.INTEGER and isinstance(value, int) and not isinstance(value, bool))
            or (kind is FactType.BOOLEAN and isinstance(value, bool))
            or (kind in (FactType.STRING, FactType.ENUM, FactType.DATE) and isinstance(value, str))
        )
        if not ok:
            self.report(
                "policy.type-mismatch",
                f"`{fact.name}` is {kind.value}; the value `{_text(value)}` is not",
                path,
                hint="remove the quotes" if isinstance(value, str) and value.isdigit() else _TYPE_HINTS[kind],
            )
            return _BAD
        if isinstance(value, str) and not value:
            self.report(
                "policy.type-mismatch",
                f"`{fact.name}` cannot be compared with an empty string",
                path,
                hint="durable_rules compares empty strings unreliably; test `absent` instead",
            )
            return _BAD
        if fact.name == "condition":
            if value not in self.condition_ids:
                ids = self.condition_ids
                self.report(
                    "policy.unknown-condition",
                    f"`{value}` is not a row of this edition's `conditions:` table",
                    path,
                    hint=did_you_mean(value, ids)
                    or (
                        "expected one of: " + ", ".join(f"`{i}`" for i in ids)
                        if ids
                        else "add the row under `conditions:`"
                    ),
                )
                return _BAD
            return value
        if kind is FactType.ENUM and value not in fact.values:
            self.report(
                "policy.unknown-value",
                f"`{value}` is not a value of `{fact.name}`; expected one of: {', '.join(fact.values)}",
                path,
                hint=did_you_mean(value, fact.values) or f"use one of: {', '.join(fact.values)}",
            )
            return _BAD
        if kind is FactType.DATE:
            try:
                if not _ISO_DATE.fullmatch(value):
                    raise ValueError(value)
                return dt.date.fromisoformat(value)
            except ValueError:
                self.report(
                    "policy.type-mismatch",
                    f"`{value}` is not a calendar date (YYYY-MM-DD)",
                    path,
                    hint="write dates as ISO 8601, e.g. `2017-12-01`",
                )
                return _BAD
        return value

    def _outcome(self, o: dict[str, Any], base: str) -> Outcome:
        decision = o["decision"]
        up_to = o.get("up_to", {})
        allowed = {"certify": {"up_to"}, "non_certify": {"ceiling"}, "pend": {"missing"}}.get(decision, set())
        for key in ("up_to", "ceiling", "missing"):
            if key in o and key not in allowed:
                self.report(
                    "policy.outcome-shape",
                    f"`{key}` does not apply to a `{decision}` outcome",
                    f"{base}.{key}",
                    hint={
                        "up_to": "only certify has a limit",
                        "ceiling": "only non_certify shows a ceiling",
                        "missing": "only pend lists missing facts",
                    }[key],
                )
        missing: list[str] = []
        for i, name in enumerate(o.get("missing", [])):
            if name not in FACTS:
                self.report(
                    "policy.unknown-fact",
                    f"`{name}` is not a fact of the case contract",
                    f"{base}.missing[{i}]",
                    hint=did_you_mean(name, FACTS) or "facts are listed in docs/policy-authoring.md",
                )
            missing.append(name)
        self._limit_ref(up_to.get("total"), f"{base}.up_to.total")
        self._limit_ref(up_to.get("per_request"), f"{base}.up_to.per_request")
        self._limit_ref(o.get("ceiling"), f"{base}.ceiling")
        return Outcome(
            decision=decision,
            reason=" ".join(o["reason"].split()),
            up_to_total=up_to.get("total"),
            up_to_per_request=up_to.get("per_request"),
            ceiling=o.get("ceiling"),
            missing=tuple(missing),
            counts=o.get("counts", "completed"),
        )

    def _engine_limits(self, rules: list[Rule], exceptions: list[RuleException]) -> None:
        if len(rules) + len(exceptions) > MAX_RULES_PER_EDITION:
            self.report(
                "policy.engine-limit",
                f"{len(rules) + len(exceptions)} rules and exceptions in one edition; at most "
                f"{MAX_RULES_PER_EDITION} are allowed",
                "$.rules",
                hint="split the guideline into chapters, one file each",
            )
        per_service: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
        for rule in rules:
            for service in rule.services:
                per_service[service].update((c.fact, c.op, repr(c.value) + str(c.limit)) for c in leaves(rule.when))
        for service, conds in sorted(per_service.items()):
            if len(conds) > MAX_CONDITIONS_PER_SERVICE:
                self.report(
                    "policy.engine-limit",
                    f"{len(conds)} distinct conditions for `{service}`; at most {MAX_CONDITIONS_PER_SERVICE} "
                    "can be evaluated safely",
                    "$.rules",
                    hint="durable_rules fails at run time when one case matches more than 64 conditions",
                )


_BAD = object()


def _text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


_TYPE_HINTS = {
    FactType.INTEGER: "write a whole number",
    FactType.BOOLEAN: "write `true` or `false`",
    FactType.DATE: "write a date as YYYY-MM-DD",
    FactType.STRING: "write the value as text",
    FactType.ENUM: "write one of the fact's values",
}
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _limit(lim: dict[str, Any]) -> Limit:
    return Limit(
        lim["id"],
        lim["value"],
        (lim["range"][0], lim["range"][1]) if lim.get("range") else None,
        lim["unit"],
        lim["citation"],
        lim["provenance"],
        lim["description"],
    )


def _rule_exception(raw: dict[str, Any], when: tuple[Clause, ...]) -> RuleException:
    return RuleException(
        id=raw["id"],
        rules=tuple(raw["rules"]),
        citation=raw["citation"],
        when=when,
        raises_total=raw["raises"]["total"],
        description=raw.get("description", ""),
        provenance=raw.get("provenance"),
    )


def _check_set(editions: list[Edition], maps: dict[str, SourceMap]) -> list[Diagnostic]:
    """Checks across files: one guideline's editions must be distinct and must not overlap in time."""
    problems: list[Diagnostic] = []
    by_guideline: dict[str, list[Edition]] = defaultdict(list)
    for e in editions:
        by_guideline[e.guideline_id].append(e)
    for gid, group in sorted(by_guideline.items()):
        group.sort(key=lambda e: (e.effective_from, e.file))
        seen: dict[str, Edition] = {}
        for e in group:
            if e.edition_id in seen:
                problems.append(
                    located(
                        "policy.duplicate-edition",
                        f"edition `{e.edition_id}` of `{gid}` is also defined in `{seen[e.edition_id].file}`",
                        "$.edition.id",
                        file=e.file,
                        source_map=maps.get(e.file),
                        hint="give each edition its own id and file",
                    )
                )
            seen[e.edition_id] = e
        problems.extend(_overlaps(gid, group, maps))
        if len({(e.guideline_title, e.family, e.tier, frozenset(e.scope)) for e in group}) > 1:
            problems.append(
                located(
                    "policy.inconsistent-guideline",
                    f"editions of `{gid}` disagree on the guideline's title, family, tier or scope",
                    "$.guideline",
                    file=group[-1].file,
                    source_map=maps.get(group[-1].file),
                    hint="the `guideline:` block must be the same in every edition of one guideline",
                )
            )
    return problems


def _overlaps(gid: str, group: list[Edition], maps: dict[str, SourceMap]) -> list[Diagnostic]:
    """Pairs of one guideline's editions (in order of their start) that a request could select both of."""
    problems: list[Diagnostic] = []

    def overlap(later: Edition, path: str, message: str, hint: str) -> None:
        problems.append(
            located(
                "policy.overlapping-editions",
                message,
                path,
                file=later.file,
                source_map=maps.get(later.file),
                hint=hint,
            )
        )

    for earlier, later in itertools.combinations(group, 2):
        if earlier.within or later.within or earlier.selected_by != later.selected_by:
            both = _both_selected(earlier, later)
            if both is not None:
                overlap(
                    later,
                    "$.edition.effective",
                    f"edition `{later.edition_id}` of `{gid}` and edition `{earlier.edition_id}` "
                    f"(`{earlier.file}`) are both in force for {both}",
                    "bound one of them with `to:`, `from:` or `within` so that every request "
                    "selects at most one edition of a guideline",
                )
        elif earlier.effective_to is None or later.effective_from <= earlier.effective_to:
            ends = f"`{earlier.effective_to.isoformat()}`" if earlier.effective_to else "open-ended (`to: null`)"
            day_before = (later.effective_from - dt.timedelta(days=1)).isoformat()
            overlap(
                later,
                "$.edition.effective.from",
                f"edition `{later.edition_id}` of `{gid}` starts `{later.effective_from}` while "
                f"edition `{earlier.edition_id}` (`{earlier.file}`) is still in force (ends {ends})",
                f"set `to:` of edition `{earlier.edition_id}` to `{day_before}`",
            )
    return problems


def _both_selected(a: Edition, b: Edition) -> str | None:
    """Where two editions' windows (on the date of service and the request date) meet, in words; None
    when no request selects both."""
    spans: list[str] = []
    for key, words in (("date_of_service", "dates of service"), ("request_date", "requests made")):
        lo_a, hi_a = _window(a, key)
        lo_b, hi_b = _window(b, key)
        lo = max((d for d in (lo_a, lo_b) if d is not None), default=None)
        hi = min((d for d in (hi_a, hi_b) if d is not None), default=None)
        if lo is not None and hi is not None and lo > hi:
            return None
        if lo is not None or hi is not None:
            spans.append(
                f"{words} {'from ' + lo.isoformat() if lo else ''}{' ' if lo and hi else ''}"
                f"{'to ' + hi.isoformat() if hi else ''}".rstrip()
            )
    return " and ".join(spans) or "every request"


def _window(e: Edition, key: str) -> tuple[dt.date | None, dt.date | None]:
    if e.selected_by == key:
        return e.effective_from, e.effective_to
    if e.within is not None and e.within[0] == key:
        return e.within[1], e.within[2]
    return None, None


def _procedure_words_read(rules: list[Rule], row: str) -> tuple[str, ...]:
    """The words of `postsurgical_procedure contains_any` in the rules that test the `condition` for `row`."""
    out: list[str] = []
    for rule in rules:
        conds = leaves(rule.when)
        names_row = any(
            c.fact == "condition"
            and (
                (c.op == "eq" and c.value == row)
                or (c.op == "in" and isinstance(c.value, list | tuple) and row in c.value)
            )
            for c in conds
        )
        if names_row:
            out.extend(
                str(w) for c in conds if c.fact == "postsurgical_procedure" and c.op == "contains_any" for w in c.value
            )
    return tuple(out)

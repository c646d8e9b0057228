"""Rule-pack formats: format 2 read as the one shape the checks and the model know, and back again.

Format 2 lists each group of services' rules under `decisions:` with its hit policy, and lets citations
refer to `sources:` by id (`source_ref`). `normalize` turns a schema-valid format-2 document into the
format-1 shape (`rules:` with `services:` on every rule, `hit_policies:`, every `source` written out) and
records, for every internal JSON path it made, the path of the file as written (`renames`), so a
diagnostic about `$.rules[3].when[0]` points at `$.decisions[1].rules[0].when[0]` and its line. What the
checks and the engine read is therefore the same for both formats; `migrate_text` rewrites a format-1
file as format 2, keeping its comments, and `imr-policy migrate` proves the result decides the same.

`sources:` and `source_ref` are read in both formats.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from imr_policy.model.diagnostics import Severity


@dataclass(frozen=True, slots=True)
class Problem:
    code: str
    message: str
    path: str  # a path of the file as written
    hint: str
    severity: Severity = Severity.ERROR


@dataclass(frozen=True, slots=True)
class Normalized:
    data: dict[str, Any]
    renames: Mapping[str, str] = field(default_factory=dict)  # internal path prefix -> the file's path
    problems: tuple[Problem, ...] = ()


def normalize(data: dict[str, Any]) -> Normalized:
    """The document in the format-1 shape, the renames of its paths, and the problems of its format."""
    out = dict(data)
    renames: dict[str, str] = {}
    problems: list[Problem] = []
    _resolve_sources(out, renames, problems)
    fmt = data.get("format")
    if fmt == 2:
        for key, instead in (("rules", "decisions"), ("hit_policies", "decisions")):
            if key in data:
                problems.append(
                    Problem(
                        "policy.format-mismatch",
                        f"`{key}:` is format 1; a format-2 pack lists its rules under `{instead}:`",
                        f"$.{key}",
                        "move the rules into `decisions:` (`imr-policy migrate FILE` rewrites a format-1 pack), "
                        "or declare `format: 1`",
                    )
                )
        out.pop("decisions", None)
        flat = _flatten(data.get("decisions") or [], renames, problems, data)
        out["hit_policies"] = flat.hit_policies
    else:
        if "decisions" in data:
            problems.append(
                Problem(
                    "policy.format-mismatch",
                    "`decisions:` is format 2, but this pack declares `format: 1`",
                    "$.decisions",
                    "declare `format: 2` (and remove `rules:` and `hit_policies:`), or list the rules under `rules:`",
                )
            )
            out.pop("decisions")
        given = data.get("rules")
        raw: list[dict[str, Any]] = given if isinstance(given, list) else []
        flat = _Flat(list(raw), [f"$.rules[{i}]" for i in range(len(raw))], [None] * len(raw), {})
    _unread_rows(data, flat.tables, problems)
    exceptions = _overrides(flat, data.get("exceptions") or [], problems)
    out["rules"] = flat.rules
    if "exceptions" in data:
        out["exceptions"] = [e for e, _ in exceptions]
    for k, (origin, services) in enumerate(zip(flat.origins, flat.services, strict=True)):
        if origin != f"$.rules[{k}]":
            renames[f"$.rules[{k}]"] = origin
        if services is not None:
            renames[f"$.rules[{k}].services"] = services
    for k, (_, origin) in enumerate(exceptions):
        if origin != f"$.exceptions[{k}]":
            renames[f"$.exceptions[{k}]"] = origin
    return Normalized(out, renames, tuple(problems))


@dataclass(slots=True)
class _Flat:
    """The rules in the format-1 shape, with where each is written (and where its services are, when the
    rule does not list them itself)."""

    rules: list[dict[str, Any]]
    origins: list[str]
    services: list[str | None]
    hit_policies: dict[str, str]
    tables: set[str] = field(default_factory=set)  # the rows' numbers a `table:` entry turned into rules


def _flatten(
    decisions: list[dict[str, Any]], renames: dict[str, str], problems: list[Problem], data: Mapping[str, Any]
) -> _Flat:
    flat = _Flat([], [], [], {})
    owner: dict[str, int] = {}
    read_tables: set[str] = set()
    for d, decision in enumerate(decisions):
        services = list(decision["services"])
        for j, service in enumerate(services):
            if service in owner:
                problems.append(
                    Problem(
                        "policy.duplicate-decision",
                        f"`{service}` already has its rules in `$.decisions[{owner[service]}]`",
                        f"$.decisions[{d}].services[{j}]",
                        "give each service one decision: put these rules in that decision's `rules:`",
                    )
                )
                continue
            owner[service] = d
            flat.hit_policies[service] = decision["hit_policy"]
            renames[f"$.hit_policies.{service}"] = f"$.decisions[{d}].hit_policy"
        for j, row in enumerate(decision["rules"]):
            if "table" in row:
                read_tables.add(row["table"])
                at = f"$.decisions[{d}].rules[{j}]"
                for rule in table_rules(row, at, data, problems):
                    part = "reached" if rule["outcome"]["decision"] == "non_certify" else "within"
                    k = len(flat.rules)
                    # a generated rule is written nowhere: what is said of it is said of the entry and its part
                    for key, target in (
                        ("id", f"{at}.table"),
                        ("when", f"{at}.table"),
                        ("citation", f"{at}.{part}.citation"),
                        ("outcome", f"{at}.{part}"),
                        ("outcome.reason", f"{at}.{part}.reason"),
                    ):
                        renames[f"$.rules[{k}].{key}"] = target
                    flat.rules.append({**rule, "services": services})
                    flat.origins.append(at)
                    flat.services.append(f"$.decisions[{d}].services")
                continue
            rule = dict(row)
            inherited: str | None = None
            if "services" in row:
                for k, s in enumerate(row["services"]):
                    if s not in services:
                        problems.append(
                            Problem(
                                "policy.row-outside-decision",
                                f"rule `{row['id']}` is for `{s}`, which its decision does not decide "
                                f"(it decides {', '.join(services)})",
                                f"$.decisions[{d}].rules[{j}].services[{k}]",
                                "list only services of the decision here, or move the rule to the decision of "
                                "that service",
                            )
                        )
                rule["services"] = [s for s in row["services"] if s in services] or services
            else:
                rule["services"] = services
                inherited = f"$.decisions[{d}].services"
            flat.rules.append(rule)
            flat.origins.append(f"$.decisions[{d}].rules[{j}]")
            flat.services.append(inherited)
    if decisions:
        renames["$.hit_policies"] = "$.decisions"
    flat.tables = read_tables
    return flat


# ---------------------------------------------------------------------------------- rows that carry their numbers

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_PLACEHOLDERS = ("visits", "over")


def table_rules(
    entry: Mapping[str, Any], at: str, data: Mapping[str, Any], problems: list[Problem]
) -> list[dict[str, Any]]:
    """The rules a `table:` entry stands for, in the format-1 shape (without `services`): per limit that rows
    of the table name in `medical:`, in the order of `limits:`, first every `<limit>.reached` (the visits
    completed already reach it: non-certify, the limit as ceiling), then every `<limit>` (certify up to it),
    each testing `condition in` the rows that name the limit. What cannot be generated is a problem here, at
    the path of the row or the entry, and is left out (a row naming an unknown limit, rows of one limit
    spread over different times, a reason with a placeholder other than `{visits}` and `{over}`)."""
    key = entry["table"]
    rows = [r for r in data.get("conditions") or [] if isinstance(r, dict)]
    limits = {str(lim["id"]): lim for lim in data.get("limits") or [] if isinstance(lim, dict) and "id" in lim}
    if not rows:
        problems.append(
            Problem(
                "policy.table-without-rows",
                f"`table: {key}` generates its rules from the rows of `conditions:`, and this pack has none",
                f"{at}.table",
                "add the table by condition, or write the rules themselves",
            )
        )
        return []
    for part in ("reached", "within"):
        for name in _PLACEHOLDER.findall(entry[part]["reason"]):
            if name not in _PLACEHOLDERS:
                problems.append(
                    Problem(
                        "policy.table-placeholder",
                        f"`{{{name}}}` is not a placeholder of a generated reason (known: {{visits}}, {{over}})",
                        f"{at}.{part}.reason",
                        "write `{visits}` for the limit's value and unit, `{over}` for the rows' time, or plain words",
                    )
                )
                return []
    by_limit, over = _rows_by_limit(key, data, limits, problems)
    order = [lim for lim in limits if lim in by_limit]

    def reason(part: str, limit: str) -> str:
        words = {"visits": f"{limits[limit]['value']} {limits[limit].get('unit', '')}".strip(), "over": over[limit][0]}
        return _PLACEHOLDER.sub(lambda m: words[m[1]], " ".join(str(entry[part]["reason"]).split()))

    reached = [
        {
            "id": f"{limit}.reached",
            "citation": entry["reached"]["citation"],
            "when": [
                {"fact": "condition", "op": "in", "value": by_limit[limit]},
                {"fact": "completed", "op": "gte", "limit": limit},
            ],
            "outcome": {"decision": "non_certify", "ceiling": limit, "reason": reason("reached", limit)},
        }
        for limit in order
    ]
    within = [
        {
            "id": limit,
            "citation": entry["within"]["citation"],
            "when": [{"fact": "condition", "op": "in", "value": by_limit[limit]}],
            "outcome": {"decision": "certify", "up_to": {"total": limit}, "reason": reason("within", limit)},
        }
        for limit in order
    ]
    return reached + within


def _rows_by_limit(
    key: str, data: Mapping[str, Any], limits: Mapping[str, Any], problems: list[Problem]
) -> tuple[dict[str, list[str]], dict[str, tuple[str, int]]]:
    """Per limit the rows of the table name in `key`, and the time the first of them spreads it over (with
    that row's index); a row naming an unknown limit, or spreading a limit over another time, is a problem
    and is left out."""
    by_limit: dict[str, list[str]] = {}
    over: dict[str, tuple[str, int]] = {}
    for i, row in enumerate(data.get("conditions") or []):
        numbers = row.get(key) if isinstance(row, dict) else None
        if not isinstance(numbers, dict):
            continue
        limit, said = str(numbers["limit"]), str(numbers["over"])
        if limit not in limits:
            problems.append(
                Problem(
                    "policy.unknown-limit",
                    f"limit `{limit}` is not defined in `limits:`",
                    f"$.conditions[{i}].{key}.limit",
                    "name a limit of `limits:` (its value, unit and provenance are the row's number)",
                )
            )
            continue
        first = over.setdefault(limit, (said, i))
        if first[0] != said:
            problems.append(
                Problem(
                    "policy.table-rows-disagree",
                    f"row `{row['id']}` spreads limit `{limit}` over {said}, but row "
                    f"`{data['conditions'][first[1]]['id']}` spreads it over {first[0]}: the rules of one limit say "
                    "one time",
                    f"$.conditions[{i}].{key}.over",
                    "give the rows of one limit the same `over`, or give this row a limit of its own",
                )
            )
            continue
        by_limit.setdefault(limit, []).append(str(row["id"]))
    return by_limit, over


def _unread_rows(data: Mapping[str, Any], read: set[str], problems: list[Problem]) -> None:
    """Rows whose numbers no `table:` entry turns into rules: a warning, since the numbers decide nothing."""
    for i, row in enumerate(data.get("conditions") or []):
        if isinstance(row, dict) and "medical" in row and "medical" not in read:
            problems.append(
                Problem(
                    "policy.table-unread",
                    f"row `{row.get('id')}` gives medical visits, but no decision has a `table: medical` entry, so "
                    "they decide nothing",
                    f"$.conditions[{i}].medical",
                    "add `- table: medical` (with `reached:` and `within:`) to the decision of the table's services",
                    Severity.WARNING,
                )
            )


def _overrides(
    flat: _Flat, exceptions: list[dict[str, Any]], problems: list[Problem]
) -> list[tuple[dict[str, Any], str]]:
    """Each `over:` exception read as the rule it is: placed just before what it overrides, holding where
    that decides and its own conditions hold, so it decides there instead (the order of a `first`
    decision gives exactly that; under `unique` the engine and lint know it overrides). The `raises:`
    exceptions are returned as they are, each with its path."""
    kept: list[tuple[dict[str, Any], str]] = []
    for i, e in enumerate(exceptions):
        if not isinstance(e, dict) or "over" not in e:
            kept.append((e, f"$.exceptions[{i}]"))
            continue
        ids = [r["id"] for r in flat.rules]
        target = e["over"]
        if target not in ids:
            problems.append(
                Problem(
                    "policy.exception-unknown-rule",
                    f"exception `{e['id']}` overrides `{target}`, which is neither a rule of this file nor an "
                    "exception before this one",
                    f"$.exceptions[{i}].over",
                    "name the rule (or the earlier `over:` exception) whose outcome this one replaces",
                )
            )
            continue
        k = ids.index(target)
        over = flat.rules[k]
        services = list(over["services"])
        for j, s in enumerate(e.get("services", [])):
            if s not in services:
                problems.append(
                    Problem(
                        "policy.exception-outside-rule",
                        f"exception `{e['id']}` is for `{s}`, which `{target}` does not decide "
                        f"(it decides {', '.join(services)})",
                        f"$.exceptions[{i}].services[{j}]",
                        "list only services of the rule it overrides",
                    )
                )
        rule: dict[str, Any] = {k: e[k] for k in ("id", "citation", "outcome", "description", "provenance") if k in e}
        rule["services"] = [s for s in services if s in e.get("services", services)] or services
        rule["when"] = [*e["when"], *over["when"]]
        rule["overrides"] = [target]
        flat.rules.insert(k, rule)
        flat.origins.insert(k, f"$.exceptions[{i}]")
        flat.services.insert(k, f"$.exceptions[{i}].services" if "services" in e else f"$.exceptions[{i}].over")
    return kept


def _resolve_sources(out: dict[str, Any], renames: dict[str, str], problems: list[Problem]) -> None:
    """Every `source_ref` written out as its source's address; unknown, duplicate and unused sources."""
    sources = out.pop("sources", None) or []
    known: dict[str, int] = {}
    for i, entry in enumerate(sources):
        sid = entry["id"]
        if sid in known:
            problems.append(
                Problem(
                    "policy.duplicate-source",
                    f"source `{sid}` is already defined at `$.sources[{known[sid]}]`",
                    f"$.sources[{i}].id",
                    "give each source its own id",
                )
            )
            continue
        known[sid] = i
    used: set[str] = set()

    def resolve(holder: dict[str, Any], path: str) -> dict[str, Any]:
        if "source_ref" not in holder:
            return holder
        ref = holder["source_ref"]
        resolved = {k: v for k, v in holder.items() if k != "source_ref"}
        renames[f"{path}.source"] = f"{path}.source_ref"
        if "source" in holder:
            used.add(ref)
            problems.append(
                Problem(
                    "policy.source-twice",
                    "both `source` and `source_ref` are given",
                    f"{path}.source_ref",
                    "keep one: the address itself, or the id of an entry of `sources:`",
                )
            )
        elif ref not in known:
            problems.append(
                Problem(
                    "policy.unknown-source",
                    f"`{ref}` is not the id of an entry of `sources:`",
                    f"{path}.source_ref",
                    "add the source under `sources:` or write its address as `source`",
                )
            )
            resolved["source"] = ref
        else:
            used.add(ref)
            resolved["source"] = sources[known[ref]]["source"]
        return resolved

    out["citations"] = [resolve(c, f"$.citations[{i}]") for i, c in enumerate(out.get("citations") or [])]
    edition = out.get("edition")
    if isinstance(edition, dict) and isinstance(edition.get("effective"), dict):
        out["edition"] = {**edition, "effective": resolve(edition["effective"], "$.edition.effective")}
    for sid, i in known.items():
        if sid not in used:
            problems.append(
                Problem(
                    "policy.unused-source",
                    f"source `{sid}` is not referred to by any `source_ref`",
                    f"$.sources[{i}].id",
                    "remove it, or refer to it from the citations that quote it",
                    Severity.WARNING,
                )
            )


# ------------------------------------------------------------------------------------- format 1 -> 2

_TOP_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):")
_ITEM = re.compile(r"^  - ")
_SERVICES_LINE = re.compile(r"^    services:\s*\[([^\]]*)\]\s*(#.*)?$")


class MigrateError(ValueError):
    """A format-1 text this rewrite cannot carry over safely (the reason says what to do by hand)."""


def migrate_text(text: str) -> str:
    """A format-1 rule file's text as format 2: `rules:` becomes `decisions:` (one per group of services
    that share rules, rows in file order, `services:` kept on a row only where it is not the decision's),
    `hit_policies:` moves onto each decision, `format: 1` becomes `format: 2`. Comments and every other
    section are kept as written. The caller must check that the result decides the same (cli migrate does).
    """
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or data.get("format") != 1 or not isinstance(data.get("rules"), list):
        raise MigrateError("not a format-1 rule pack with `rules:`")
    sections = _sections(text.splitlines(keepends=True))
    names = [name for name, _ in sections]
    if "rules" not in names or names.count("rules") != 1:
        raise MigrateError("`rules:` must be one top-level section")
    policies: dict[str, str] = data.get("hit_policies") or {}
    out: list[str] = []
    for name, lines in sections:
        if name == "hit_policies":
            continue
        if name == "format":
            out.extend(re.sub(r"^format:\s*1\b", "format: 2", line) for line in lines)
        elif name == "rules":
            out.extend(_decisions(lines, data["rules"], policies))
        else:
            out.extend(lines)
    return "".join(out)


def _sections(lines: list[str]) -> list[tuple[str | None, list[str]]]:
    """Top-level sections, each with the comment and blank lines just before its key."""
    sections: list[tuple[str | None, list[str]]] = [(None, [])]
    pending: list[str] = []
    for line in lines:
        found = _TOP_KEY.match(line)
        if found:
            sections.append((found[1], [*pending, line]))
            pending = []
        elif line.startswith("#") or not line.strip():
            pending.append(line)
        else:
            sections[-1][1].extend(pending)
            pending = []
            sections[-1][1].append(line)
    sections[-1][1].extend(pending)
    return [s for s in sections if s[1]]


def _decisions(lines: list[str], rules: list[dict[str, Any]], policies: Mapping[str, str]) -> list[str]:
    head, items = _items(lines)
    if len(items) != len(rules):
        raise MigrateError(f"found {len(items)} rule items in the text but {len(rules)} rules")
    groups = _groups(rules)
    out = [line for line in head if not _TOP_KEY.match(line)]
    out.append("decisions:\n")
    for n, (services, members) in enumerate(groups):
        kinds = {policies.get(s, "first") for s in services}
        if len(kinds) != 1:
            raise MigrateError(f"services {', '.join(services)} share rules but have different hit policies")
        first = items[members[0]]
        lead = 0
        while lead < len(first) and not _ITEM.match(first[lead]):
            lead += 1
        if n:
            while out and not out[-1].strip():
                out.pop()
            out.append("\n")
        # the comments before the decision's first rule introduce the decision
        out.extend("  " + line.lstrip() for line in first[:lead] if line.strip())
        out.append(f"  - services: [{', '.join(services)}]\n")
        out.append(f"    hit_policy: {kinds.pop()}\n")
        out.append("    rules:\n")
        for j, i in enumerate(members):
            out.extend(_row(items[i][lead:] if j == 0 else items[i], rules[i], services))
    return out


def _items(lines: list[str]) -> tuple[list[str], list[list[str]]]:
    """The section's lines before its first item, and each item's lines (with the comments before it)."""
    head: list[str] = []
    items: list[list[str]] = []
    pending: list[str] = []
    for line in lines:
        if _ITEM.match(line):
            items.append([*pending, line])
            pending = []
        elif line.lstrip().startswith("#") or not line.strip():
            pending.append(line)
        elif items:
            items[-1].extend(pending)
            pending = []
            items[-1].append(line)
        else:
            head.extend(pending)
            pending = []
            head.append(line)
    if items:
        items[-1].extend(pending)
    else:
        head.extend(pending)
    return head, items


def _groups(rules: list[dict[str, Any]]) -> list[tuple[list[str], list[int]]]:
    """Services linked by a rule they share, in order of first appearance, with their rules' indexes."""
    group_of: dict[str, int] = {}
    groups: list[tuple[list[str], list[int]]] = []
    for i, rule in enumerate(rules):
        services = list(rule["services"])
        found = sorted({group_of[s] for s in services if s in group_of})
        if not found:
            groups.append(([], []))
            found = [len(groups) - 1]
        target = found[0]
        for other in found[1:]:  # a rule joins two groups: merge the later into the earlier
            groups[target][0].extend(groups[other][0])
            groups[target][1].extend(groups[other][1])
            groups[other] = ([], [])
        for s in services:
            if s not in groups[target][0]:
                groups[target][0].append(s)
        groups[target][1].append(i)
        for s in groups[target][0]:
            group_of[s] = target
    return [(svc, sorted(members)) for svc, members in groups if members]


def _row(item: list[str], rule: dict[str, Any], services: list[str]) -> list[str]:
    out: list[str] = []
    for line in item:
        found = _SERVICES_LINE.match(line.rstrip("\n"))
        if found and set(rule["services"]) == set(services):
            continue  # the decision says it
        if found is None and line.startswith("    services:"):
            raise MigrateError(f"rule `{rule['id']}`: write `services:` as a flow list (`[a, b]`) to migrate it")
        out.append("    " + line if line.strip() else line)
    return out


__all__ = ["MigrateError", "Normalized", "Problem", "migrate_text", "normalize"]

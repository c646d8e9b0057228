"""An edition's rules for one service as a decision table (`imr-policy show SERVICE`), as a DMN tool shows one.

Rows are the rules in the order the engine tries them (hit policy `first`: the first row whose
conditions all hold decides, imr_policy.engine.combine rule 1); columns are the facts the rows test, in the
order they first appear, then the outcome and the citation. A cell is the row's test of that fact
(`-` where the row does not test it). Exceptions follow, each with the rows it raises. A table by
condition (`conditions:`) is printed too when the rows test `condition`. Nothing here decides: the
table is a view of the rule pack as loaded.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from imr_policy.language.facts import OPERATORS
from imr_policy.model.values import Condition, Edition, RowNumbers, Rule, clause_text, leaves

_SYMBOL = {"eq": "=", "ne": "!=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">=", "in": "in", "not_in": "not in"}


@dataclass(frozen=True, slots=True)
class Table:
    """One edition's decision table for one service."""

    edition: str  # guideline@edition
    title: str
    service: str
    hit_policy: str
    columns: tuple[str, ...]  # the facts tested, then "outcome", "citation"
    rows: tuple[tuple[str, ...], ...]  # per rule: its id, one cell per fact, the outcome, the citation
    exceptions: tuple[tuple[str, str, str, str], ...]  # id, the rows it raises, its conditions, the new total
    conditions: tuple[tuple[str, str, str, str, str, str], ...]  # row id, title, regions, codes, words, medical visits
    severities: tuple[str, ...] = ()  # the severities the edition distinguishes for the service, if declared
    # the rows read, per group of body regions, when the diagnoses name no condition (`unnamed_condition:`)
    unnamed: tuple[tuple[str, str], ...] = ()
    unnamed_provenance: str | None = None
    # the post-surgical entries read, per row, when the records name the surgery, not the procedure
    # (`unnamed_procedure:`)
    procedures: tuple[tuple[str, str], ...] = ()
    procedures_provenance: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "edition": self.edition,
            "title": self.title,
            "service": self.service,
            "hit_policy": self.hit_policy,
            "severity_scale": list(self.severities),
            "columns": ["rule", *self.columns],
            "rows": [list(r) for r in self.rows],
            "exceptions": [{"id": i, "raises": r, "when": w, "total": t} for i, r, w, t in self.exceptions],
            "conditions": [
                {"id": i, "title": t, "regions": g, "codes": c, "words": w, "medical": m}
                for i, t, g, c, w, m in self.conditions
            ],
            "unnamed_condition": [{"regions": g, "rows": r} for g, r in self.unnamed],
            "unnamed_condition_provenance": self.unnamed_provenance,
            "unnamed_procedure": [{"row": r, "procedures": p} for r, p in self.procedures],
            "unnamed_procedure_provenance": self.procedures_provenance,
        }


def _value(value: Any) -> str:
    if isinstance(value, tuple):
        return "{" + ", ".join(_value(v) for v in value) + "}"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def cell(cond: Condition, edition: Edition) -> str:
    """One test, briefly: `< 6 (chiropractic.trial-visits)`, `= mild`, `mentions {fusion}`."""
    if cond.op in ("present", "absent"):
        return "given" if cond.op == "present" else "not given"
    if cond.op in _SYMBOL:
        if cond.limit:
            return f"{_SYMBOL[cond.op]} {edition.limit(cond.limit).value} ({cond.limit})"
        return f"{_SYMBOL[cond.op]} {_value(cond.value)}"
    return f"{OPERATORS[cond.op].brief} {_value(cond.value)}"


def _outcome(rule: Rule, edition: Edition) -> str:
    o = rule.outcome
    text = o.decision.replace("non_", "non-").replace("_", " ")
    if o.up_to_total:
        counted = "" if o.counts == "completed" else f", counting {o.counts}"
        text += f" up to {edition.limit(o.up_to_total).value} in all ({o.up_to_total}{counted})"
    if o.up_to_per_request:
        text += f" up to {edition.limit(o.up_to_per_request).value} per request ({o.up_to_per_request})"
    if o.ceiling:
        text += f"; ceiling {edition.limit(o.ceiling).value} ({o.ceiling})"
    if o.missing:
        text += f"; missing {', '.join(o.missing)}"
    return text


def table(edition: Edition, service: str) -> Table | None:
    """The edition's decision table for `service`, or None when it has no rule for it."""
    rules = edition.rules_for(service)
    if not rules:
        return None
    facts: list[str] = []
    for r in rules:
        for c in r.when:
            if isinstance(c, Condition) and c.fact not in facts:
                facts.append(c.fact)
    # `any:` and `not:` span several facts: they have a column of their own, in words
    composite = any(not isinstance(c, Condition) for r in rules for c in r.when)
    rows = []
    for r in rules:
        cells = []
        for fact in facts:
            tests = [cell(c, edition) for c in r.when if isinstance(c, Condition) and c.fact == fact]
            cells.append("; ".join(tests) if tests else "-")
        if composite:
            other = [
                clause_text(c, lambda x: f"{x.fact} {cell(x, edition)}") for c in r.when if not isinstance(c, Condition)
            ]
            cells.append("; ".join(other) or "-")
        label = r.id + (f" (exception to {', '.join(r.overrides)})" if r.overrides else "")
        rows.append((label, *cells, _outcome(r, edition), r.citation))
    if composite:
        facts.append("and")
    exceptions = tuple(
        (
            x.id,
            ", ".join(x.rules),
            "; ".join(clause_text(c, lambda y: f"{y.fact} {cell(y, edition)}") for c in x.when),
            f"{edition.limit(x.raises_total).value} ({x.raises_total})",
        )
        for x in edition.exceptions_for(service)
    )
    tested = any(c.fact == "condition" for r in rules for c in leaves(r.when))
    conditions = _condition_rows(edition) if tested else ()
    scale = edition.severity_scale(service)
    unnamed = edition.unnamed_condition if tested else None
    surgery = edition.unnamed_procedure if tested and edition.tests_fact(service, "postsurgical_procedure") else None
    return Table(
        edition.key,
        edition.edition_title,
        service,
        "first (the first row whose conditions all hold decides; rows in file order)"
        if edition.hit_policy(service) == "first"
        else "unique (no two rows can hold together; order carries no meaning)",
        (*facts, "outcome", "citation"),
        tuple(rows),
        exceptions,
        conditions,
        scale.values if scale else (),
        tuple((", ".join(g.regions), ", ".join(g.rows)) for g in unnamed.regions) if unnamed else (),
        unnamed.provenance if unnamed else None,
        tuple((r.row, ", ".join(r.procedures)) for r in surgery.rows) if surgery else (),
        surgery.provenance if surgery else None,
    )


def _condition_rows(edition: Edition) -> tuple[tuple[str, str, str, str, str, str], ...]:
    """The edition's table by condition, a line per row: id, title, regions, codes, words, the medical
    visits the row carries (`medical:`)."""
    return tuple(
        (
            row.id,
            row.title,
            ", ".join(row.regions) or "any",
            "; ".join(
                part
                for part in (
                    f"ICD-9-CM {', '.join(row.icd9)}" if row.icd9 else "",
                    f"ICD-10-CM {', '.join(row.icd10)}" if row.icd10 else "",
                )
                if part
            )
            or "-",
            ", ".join(
                row.words
                + tuple(f"{w} (in {'/'.join(row.regions)})" for w in row.words_in_region)
                + tuple(f"{w} (shared)" for w in row.general_words)
                + tuple(f"{w} (in the procedure)" for w in row.procedure_words)
            )
            or "-",
            _medical(edition, row.medical),
        )
        for row in edition.conditions
    )


def _medical(edition: Edition, numbers: RowNumbers | None) -> str:
    """`10 visits over 8 weeks (physical-therapy.medical.10-over-8-weeks)`, or `-`."""
    if numbers is None:
        return "-"
    limit = edition.limit(numbers.limit)
    return f"{limit.value} {limit.unit} over {numbers.over} ({numbers.limit})"


def render(t: Table, fmt: str) -> str:
    """`text` (aligned columns) or `markdown` (a GitHub table)."""
    head = ("rule", *t.columns)
    title = f"{t.edition}: {t.title} - {t.service.replace('_', ' ')}; hit policy {t.hit_policy}"
    if t.severities:
        title += f"; an unstated severity is read as {' or '.join(t.severities)}"
    blocks = [_grid(head, t.rows, fmt, title)]
    if t.exceptions:
        blocks.append(_grid(("exception", "raises", "when", "new total"), t.exceptions, fmt, "exceptions"))
    if t.conditions:
        blocks.append(
            _grid(
                ("row", "condition", "regions", "codes", "words", "medical visits"),
                t.conditions,
                fmt,
                "table by condition",
            )
        )
    if t.unnamed:
        title = f"diagnoses that name no condition, only the injured part: the rows read [{t.unnamed_provenance}]"
        blocks.append(_grid(("body regions", "rows read one by one"), t.unnamed, fmt, title))
    if t.procedures:
        title = f"surgery that names no procedure: the post-surgical entries read [{t.procedures_provenance}]"
        blocks.append(_grid(("row", "entries read one by one"), t.procedures, fmt, title))
    return "\n".join(blocks)


def _grid(head: tuple[str, ...], rows: tuple[tuple[str, ...], ...], fmt: str, title: str) -> str:
    if fmt == "markdown":

        def esc(s: str) -> str:
            return s.replace("|", "\\|")

        lines = [f"**{esc(title)}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
        return "\n".join(lines) + "\n"
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines) + "\n"


__all__ = ["Table", "cell", "render", "table"]

"""Renderings of a policy diff and its impact: text (terminal), Markdown (review ticket), JSON (tools).

The HTML report is in `html_report.py`; all of them read the same rows (`rows`), so they cannot
disagree about what changed.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

from imr_policy.cli import render
from imr_policy.compliance.diff import (
    EditionDiff,
    EntityChange,
    PolicyDiff,
    ProcedureDiff,
    ProcedureItem,
    condition_text,
    limit_users,
    plain,
    value_text,
)
from imr_policy.compliance.impact import Example, ImpactReport
from imr_policy.model.values import Citation, Edition, Limit, Rule, RuleException, Silence

FORMAT_VERSION = 1
WIDTH = render.WIDTH
EFFECT_WORDS = {"decision": "affects decisions", "basis": "changes the cited basis", "text": "wording only"}
VERB = {"added": "added", "removed": "removed", "changed": "changed", "renamed": "renamed"}
SIGN = {"added": "+", "removed": "-", "changed": "~", "renamed": ">"}
ENTITY_ORDER = (
    "jurisdiction",
    "edition",
    "limit",
    "condition",
    "rule",
    "exception",
    "silence",
    "invariant",
    "citation",
    # a procedural pack's parts
    "procedure",
    "calendar",
    "holiday-year",
    "receipt",
    "time-limit",
    "consequence",
    "letter",
    "letter-element",
    "source",
)
_LIST_FIELDS = frozenset({"days", "uncertain", "names", "why_uncertain", "business_weekdays", "channels", "applies_to"})


@dataclass(frozen=True, slots=True)
class Row:
    """One line of a change: a field, its old and new text (either may be None), or lines of a list diff."""

    label: str
    old: str | None = None
    new: str | None = None
    minus: tuple[str, ...] = ()
    plus: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------- rows


def citation_text(edition: Edition | None, citation_id: str | None) -> str:
    if edition is None or citation_id is None:
        return "none"
    try:
        c = edition.citation(citation_id)
    except KeyError:
        return f"`{citation_id}`"
    pages = f", p. {c.pages}" if c.pages else ""
    return f"{c.section}{pages} [{c.provenance}] (`{c.id}`)"


def limit_text(limit: Limit) -> str:
    stated = f" (stated {limit.stated})" if limit.range else ""
    return f"{limit.value}{stated} {limit.unit}"


def outcome_text(rule: Rule, edition: Edition | None) -> str:
    o = rule.outcome

    def lim(limit_id: str) -> str:
        if edition is None:
            return f"`{limit_id}`"
        try:
            return f"`{limit_id}` ({edition.limit(limit_id).value})"
        except KeyError:
            return f"`{limit_id}`"

    if o.decision == "certify":
        if o.up_to_total:
            return f"certify up to a total of {lim(o.up_to_total)}"
        if o.up_to_per_request:
            return f"certify up to {lim(o.up_to_per_request)} per request"
        return "certify"
    if o.decision == "pend":
        return "pend, missing " + ", ".join(o.missing)
    return "non-certify" + (f" (ceiling {lim(o.ceiling)})" if o.ceiling else "")


def _entity_rows(value: Any, edition: Edition | None) -> list[Row]:
    """What an added or removed entity is."""
    if isinstance(value, Limit):
        return [Row("value", new=limit_text(value)), Row("citation", new=citation_text(edition, value.citation))]
    if isinstance(value, Rule):
        return [
            Row("services", new=", ".join(value.services)),
            Row("when", new="; ".join(condition_text(c, edition) for c in value.when) or "always"),
            Row("outcome", new=outcome_text(value, edition)),
            Row("citation", new=citation_text(edition, value.citation)),
        ]
    if isinstance(value, RuleException):
        return [
            Row("rules", new=", ".join(value.rules)),
            Row("when", new="; ".join(condition_text(c, edition) for c in value.when) or "always"),
            Row("raises total to", new=f"`{value.raises_total}`"),
            Row("citation", new=citation_text(edition, value.citation)),
        ]
    if isinstance(value, Citation):
        return [Row("citation", new=citation_text(edition, value.id))]
    if isinstance(value, Silence):
        return [Row("not addressed, per", new=citation_text(edition, value.citation))]
    return []


def rows(change: EntityChange, pair: EditionDiff | None) -> list[Row]:
    """The rows that show one change: what was added or removed, or each changed field, old and new."""
    if isinstance(change.old, ProcedureItem) or isinstance(change.new, ProcedureItem):
        return procedure_rows(change)
    old_ed = pair.old if pair else None
    new_ed = pair.new if pair else None
    if change.kind in ("added", "removed"):
        value = change.new if change.kind == "added" else change.old
        out = _entity_rows(value, new_ed if change.kind == "added" else old_ed)
        return [Row(r.label, old=r.new) if change.kind == "removed" else r for r in out]
    out = []
    if change.entity == "limit" and isinstance(change.old, Limit) and isinstance(change.new, Limit):
        # a threshold: its number and citation always shown, old -> new only where they changed
        if threshold_changed(change):
            out.append(Row("value", limit_text(change.old), limit_text(change.new)))
        else:
            out.append(Row("value (unchanged)", new=limit_text(change.new)))
        old_cite, new_cite = citation_text(old_ed, change.old.citation), citation_text(new_ed, change.new.citation)
        out.append(Row("citation", old_cite, new_cite) if old_cite != new_cite else Row("citation", new=new_cite))
        for f in change.fields:
            if f.field not in ("value", "range", "unit", "citation"):
                out.append(_field_row(f.field, f.old, f.new, old_ed, new_ed))
        old_users, new_users = users_of(change, pair)
        if old_users == new_users:
            if new_users:
                out.append(Row("used by", new=new_users))
        else:
            out.append(Row("used by", old_users or "nothing", new_users or "nothing"))
        return out
    return [_field_row(f.field, f.old, f.new, old_ed, new_ed) for f in change.fields]


def procedure_rows(change: EntityChange) -> list[Row]:
    """A part of a procedural pack: what was added or removed, or each changed field; then where it is
    written on each side (`file:line`)."""
    if change.kind in ("added", "removed"):
        item = change.new if change.kind == "added" else change.old
        assert isinstance(item, ProcedureItem)
        # a whole year's names and reasons are in the JSON; the text says which days
        shown = [
            (name, value)
            for name, value, _ in item.fields
            if value not in (None, "", ()) and name not in ("names", "why_uncertain")
        ]
        found = [(name.replace("_", " "), value_text(value)) for name, value in shown]
        found.append(("at", str(change.new_at or change.old_at)))
        return [Row(label, new=text) if change.kind == "added" else Row(label, old=text) for label, text in found]
    out = []
    for f in change.fields:
        label = f.field.replace("_", " ")
        if f.field in _LIST_FIELDS:
            gone = tuple(value_text(x) for x in f.old if x not in f.new)
            came = tuple(value_text(x) for x in f.new if x not in f.old)
            out.append(Row(label, minus=gone, plus=came))
        elif f.field == "effective_to":
            ends = (value_text(f.old) if f.old else "open-ended", value_text(f.new) if f.new else "open-ended")
            out.append(Row(label, *ends))
        else:
            out.append(Row(label, _side_text(f.old, gone="(none)"), _side_text(f.new, gone="(removed)")))
    out.append(Row("at", str(change.old_at), str(change.new_at)))
    return out


def procedure_span(p: Any) -> str:
    return f"{p.effective_from.isoformat()} to {p.effective_to.isoformat() if p.effective_to else 'open-ended'}"


def procedure_title(pair: ProcedureDiff) -> str:
    def name(p: Any) -> str:
        return f"UR procedure `{p.id}` ({p.jurisdiction}, {procedure_span(p)})"

    if pair.relation == "added" and pair.new:
        return f"{name(pair.new)}: procedural pack added"
    if pair.relation == "removed" and pair.old:
        return f"{name(pair.old)}: procedural pack removed"
    assert pair.old and pair.new
    extra = {
        "same": "",
        "paired": f" (the only procedural pack of {pair.jurisdiction} on each side)",
        "successor": " (successive packs)",
    }
    return f"{name(pair.old)} -> {name(pair.new)}{extra[pair.relation]}"


def procedure_outline(pair: ProcedureDiff) -> str:
    """What an added or removed pack holds."""
    p = pair.new or pair.old
    assert p is not None
    years = [y for y, _ in p.holidays]
    held = f"holidays of {years[0]} to {years[-1]}" if years else "no holiday years"
    return f"{len(p.limits)} time limits, {held}, time zone {p.time_zone}; `{p.file}`"


def threshold_changed(change: EntityChange) -> bool:
    """Whether a limit change changes its number (value, stated range or unit), not only its words."""
    return any(f.field in ("value", "range", "unit") for f in change.fields)


def users_of(change: EntityChange, pair: EditionDiff | None) -> tuple[str, str]:
    """What uses a changed limit on the old side and on the new side (each side on its own)."""
    old_ed = pair.old if pair else None
    new_ed = pair.new if pair else None
    old = ", ".join(limit_users(old_ed, change.old.id)) if old_ed is not None and change.old is not None else ""
    new = ", ".join(limit_users(new_ed, change.new.id)) if new_ed is not None and change.new is not None else ""
    return old, new


def _side_text(value: Any, *, gone: str) -> str:
    """A field value, or what it means that there is none (a removed description is not an empty string)."""
    return gone if value is None or value in ("", ()) else value_text(value)


def _field_row(name: str, old: Any, new: Any, old_ed: Edition | None, new_ed: Edition | None) -> Row:
    if name == "when":
        return Row(
            "when",
            minus=tuple(condition_text(c, old_ed) for c in old if c not in new),
            plus=tuple(condition_text(c, new_ed) for c in new if c not in old),
        )
    if name == "citation":
        return Row("citation", citation_text(old_ed, old), citation_text(new_ed, new))
    if name == "rule_order":
        return Row("rule order (first that holds decides)", ", ".join(old), ", ".join(new))
    if name == "effective_to":
        return Row("effective to", value_text(old) if old else "open-ended", value_text(new) if new else "open-ended")
    if name == "steps":
        return Row("evidence search sequence", _steps(old), _steps(new))
    return Row(
        name.replace("outcome.", "outcome ").replace("_", " "),
        _side_text(old, gone="(none)"),
        _side_text(new, gone="(removed)"),
    )


def _steps(steps: Any) -> str:
    try:
        return " -> ".join(f"{s.label} ({s.role})" for s in steps)
    except AttributeError:
        return value_text(steps)


def ordered(changes: tuple[EntityChange, ...]) -> list[EntityChange]:
    return sorted(changes, key=lambda c: (ENTITY_ORDER.index(c.entity), ("decision", "basis", "text").index(c.effect)))


def headline(change: EntityChange) -> str:
    if change.kind == "renamed":
        sim = f", {round((change.similarity or 0) * 100)}% similar" if change.similarity is not None else ""
        return f"{change.entity} `{change.old_id}` renamed to `{change.new_id}`{sim}"
    return f"{change.entity} `{change.id}` {VERB[change.kind]}"


def pair_title(pair: EditionDiff) -> str:
    if pair.relation == "added" and pair.new:
        return f"{pair.new.key} ({pair.new.edition_title}): edition added"
    if pair.relation == "removed" and pair.old:
        return f"{pair.old.key} ({pair.old.edition_title}): edition removed"
    assert pair.old and pair.new
    extra = {"same": "", "paired": " (the only edition on each side)", "successor": " (successive editions)"}
    return f"{pair.old.key} -> {pair.new.key}{extra[pair.relation]}"


def compared_text(diff: PolicyDiff) -> str:
    """`12 edition pairs, 2 procedural pack pairs and 2 jurisdiction profiles`: what was looked at."""
    parts = [f"{len(diff.editions)} edition pairs"] if diff.editions or not diff.procedures else []
    if diff.procedures:
        parts.append(f"{len(diff.procedures)} procedural pack pair{'s' if len(diff.procedures) != 1 else ''}")
    if diff.profiles_compared:
        parts.append(f"{diff.profiles_compared} jurisdiction profile{'s' if diff.profiles_compared != 1 else ''}")
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _entries(pairs: tuple[Any, ...], differing: int, what: str) -> str:
    added = sum(1 for p in pairs if p.relation == "added")
    removed = sum(1 for p in pairs if p.relation == "removed")
    out = f"{differing} of {len(pairs)} {what} entries"
    return out + (f" ({added} added, {removed} removed)" if added or removed else "")


def summary_line(diff: PolicyDiff) -> str:
    if diff.compared == 0:
        return (
            "Nothing was compared: neither side holds a guideline edition or a UR procedural pack, and the sides "
            "do not both hold jurisdiction profiles; the sides are not shown to be equivalent."
        )
    if diff.equivalent:
        return f"No differences: the policy sets are equivalent ({compared_text(diff)} compared)."
    counts = diff.counts()
    total = sum(counts.values())
    parts = [_entries(diff.editions, len(diff.differing), "edition")] if diff.editions or not diff.procedures else []
    if diff.procedures:
        parts.append(_entries(diff.procedures, len(diff.differing_procedures), "procedural pack"))
    editions = " and ".join(parts)
    return (
        f"{total} change{'s' if total != 1 else ''} in {editions}: {counts['decision']} affecting decisions, "
        f"{counts['basis']} the cited basis, {counts['text']} wording only."
    )


# ---------------------------------------------------------------------------------------------- impact helpers


def kind_text(kind: tuple[str, str, str]) -> str:
    old, new, direction = kind
    words = {"more": "more approved", "less": "less approved", "same": "same quantity"}
    return f"{old} -> {new}" + (f" ({words[direction]})" if old == new or direction != "same" else "")


def example_line(e: Example) -> str:
    c = e.change
    imr = ""
    if c.old.imr_outcome != c.new.imr_outcome:
        imr = f"; IMR {c.old.imr_outcome or 'none'} -> {c.new.imr_outcome or 'none'}"
    return (
        f"{e.source} (case `{e.case_id}`), request `{c.request}`, {c.requested} {c.service.replace('_', ' ')}: "
        f"{c.old.determination} {c.old.approved} -> {c.new.determination} {c.new.approved}{imr}"
    )


def visits_line(r: ImpactReport) -> str:
    net = r.visits_gained - r.visits_lost
    return (
        f"approved visits: {r.visits_gained:,} gained, {r.visits_lost:,} lost (net {net:+,}) over "
        f"{r.changed_items:,} changed items"
    )


def examples_note(r: ImpactReport) -> str:
    shown = len(r.examples)
    return (
        f"{shown:,} of {r.changed_items:,} changed items; `--impact-out FILE` writes every one as CSV or JSON Lines"
        if shown < r.changed_items
        else f"all {r.changed_items:,} changed items"
    )


def breakdown_md(title: str, rows_: tuple[Any, ...]) -> list[str]:
    out = [f"| {title} | changed items | approved visits gained | lost | net |", "|---|---:|---:|---:|---:|"]
    out += [f"| {_md(b.key)} | {b.items:,} | {b.gained:,} | {b.lost:,} | {b.gained - b.lost:+,} |" for b in rows_]
    return [*out, ""]


def decisive_text(outcome: Any) -> str:
    return "; ".join(outcome.to_dict()["decisive"]) or "no decisive rule"


def case_yaml(e: Example) -> str:
    return render.to_yaml(e.case) if e.case is not None else "(the case text is not available)\n"


# ---------------------------------------------------------------------------------------------- text


def text(diff: PolicyDiff, *, old: str, new: str, impact: ImpactReport | None = None) -> str:
    out = ["imr-policy diff", f"  old: {old}", f"  new: {new}", ""]
    for c in ordered(diff.jurisdictions):
        out.append(f"{SIGN[c.kind]} jurisdiction profile {headline(c)} [{EFFECT_WORDS[c.effect]}]")
        out.extend(_text_rows(rows(c, None), "    "))
    for pair in diff.differing:
        out.append(pair_title(pair))
        if pair.relation in ("added", "removed"):
            e = pair.new or pair.old
            assert e is not None
            dates = (
                f"{e.effective_from.isoformat()} to {e.effective_to.isoformat() if e.effective_to else 'open-ended'}"
            )
            out.append(
                f"  in force {dates}; {len(e.rules)} rules, {len(e.limits)} limits, {len(e.exceptions)} exceptions"
            )
        for c in ordered(pair.changes):
            out.append(f"  {SIGN[c.kind]} {headline(c)} [{EFFECT_WORDS[c.effect]}]")
            out.extend(_text_rows(rows(c, pair), "      "))
        out.append("")
    for ppair in diff.differing_procedures:
        out.append(procedure_title(ppair))
        if ppair.relation in ("added", "removed"):
            out.append(f"  {procedure_outline(ppair)}")
        for c in ordered(ppair.changes):
            out.append(f"  {SIGN[c.kind]} {headline(c)} [{EFFECT_WORDS[c.effect]}]")
            out.extend(_text_rows(rows(c, None), "      "))
        out.append("")
    out.append(summary_line(diff))
    if impact is not None:
        out.append("")
        out.extend(_impact_text(impact))
    return "\n".join(out) + "\n"


def _text_rows(items: list[Row], indent: str) -> list[str]:
    out = []
    for r in items:
        if r.minus or r.plus:
            out.append(f"{indent}{r.label}:")
            out.extend(f"{indent}  - {m}" for m in r.minus)
            out.extend(f"{indent}  + {p}" for p in r.plus)
        elif r.old is not None and r.new is not None:
            line = f"{r.label}: {r.old} -> {r.new}"
            if len(indent) + len(line) <= WIDTH:
                out.append(indent + line)
            else:
                out.extend(
                    textwrap.wrap(
                        f"{r.label} (old): {r.old}",
                        WIDTH,
                        initial_indent=indent,
                        subsequent_indent=indent + "  ",
                        break_on_hyphens=False,
                    )
                )
                out.extend(
                    textwrap.wrap(
                        f"{r.label} (new): {r.new}",
                        WIDTH,
                        initial_indent=indent,
                        subsequent_indent=indent + "  ",
                        break_on_hyphens=False,
                    )
                )
        else:
            value = r.new if r.new is not None else r.old
            out.extend(
                textwrap.wrap(
                    f"{r.label}: {value}",
                    WIDTH,
                    initial_indent=indent,
                    subsequent_indent=indent + "  ",
                    break_on_hyphens=False,
                )
            )
    return out


def _impact_text(r: ImpactReport) -> list[str]:
    what = "generated cases (Hypothesis, over the changed region)" if r.mode == "generated" else f"`{r.corpus}`"
    out = [f"Impact on {what}; engine {r.engine}"]
    out.extend(f"  note: {n}" for n in r.notes)
    out.append(f"  {r.entries:,} cases: {r.compared:,} compared, {r.invalid:,} invalid, {r.errors:,} engine errors")
    out.append(
        f"  changed: {r.changed_cases:,} cases, {r.changed_items:,} items (determination, approved quantity or IMR "
        f"outcome); {r.basis_only_items:,} more items keep their decision but cite another rule or edition"
    )
    if r.changed_items:
        out.append(f"  {visits_line(r)}")
        for title, rows_ in (
            ("by jurisdiction", r.by_jurisdiction),
            ("by service", r.by_service_visits),
            ("by month of the date of service", r.by_month),
        ):
            out.append(f"  {title} (items, approved visits gained, lost):")
            out.extend(
                f"    {b.items:>8,} {'+' + format(b.gained, ','):>8} {'-' + format(b.lost, ','):>8}  {b.key}"
                for b in rows_
            )
        out.append("  by kind of change:")
        out.extend(f"    {n:>8,}  {kind_text(k)}" for k, n in r.by_kind)
        if r.by_imr:
            out.append("  by IMR outcome:")
            out.extend(f"    {n:>8,}  {o} -> {w}" for (o, w), n in r.by_imr)
        out.append("  by cause (the rule whose decision differs):")
        for cause, n in r.by_cause:
            out.append(f"    {n:>8,}  {cause.label}")
            out.extend(f"              {note}" for note in cause.notes)
        out.append(f"  examples ({examples_note(r)}):")
        for e in r.examples:
            out.extend(
                textwrap.wrap(
                    example_line(e), WIDTH, initial_indent="    ", subsequent_indent="      ", break_on_hyphens=False
                )
            )
            out.append(f"      old basis: {decisive_text(e.change.old)}")
            out.append(f"      new basis: {decisive_text(e.change.new)}")
            out.append(f"      cause: {e.cause.label}")
            if e.shrunk:
                out.append("      shrunk case:")
                out.extend("        " + line for line in case_yaml(e).splitlines())
    if r.problems:
        out.append("  problems (first ones):")
        out.extend(f"    {p}" for p in r.problems)
    return out


# ---------------------------------------------------------------------------------------------- markdown


def _md(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def markdown(diff: PolicyDiff, *, old: str, new: str, impact: ImpactReport | None = None) -> str:
    out = ["# Policy diff", "", f"- **Old:** `{old}`", f"- **New:** `{new}`", f"- **Result:** {summary_line(diff)}", ""]
    if diff.jurisdictions:
        out += ["## Jurisdiction profiles", ""]
        for c in ordered(diff.jurisdictions):
            out += _md_change(c, None)
    for pair in diff.differing:
        out += [f"## {pair_title(pair)}", ""]
        limits = [
            c for c in pair.changes if c.entity == "limit" and c.kind in ("changed", "renamed") and threshold_changed(c)
        ]
        if limits:
            out += [
                "### Changed thresholds",
                "",
                "| limit | old | new | old citation | new citation | used by |",
                "|---|---|---|---|---|---|",
            ]
            for c in limits:
                assert isinstance(c.old, Limit) and isinstance(c.new, Limit)
                old_users, new_users = users_of(c, pair)
                users = new_users if old_users == new_users else f"{old_users or 'nothing'} → {new_users or 'nothing'}"
                name = f"`{c.old_id}` -> `{c.new_id}`" if c.kind == "renamed" else f"`{c.id}`"
                out.append(
                    f"| {name} | {limit_text(c.old)} | {limit_text(c.new)} "
                    f"| {_md(citation_text(pair.old, c.old.citation))} "
                    f"| {_md(citation_text(pair.new, c.new.citation))} | {_md(users)} |"
                )
            out.append("")
        others = [c for c in ordered(pair.changes) if c not in limits]
        if others:
            out += ["### Changes", ""]
            for c in others:
                out += _md_change(c, pair)
        for c in limits:
            extra = [r for r in rows(c, pair) if r.label not in ("value", "citation", "used by")]
            if extra:
                out += [f"- **{c.entity} `{c.id}`**, other fields:"]
                out += _md_rows(extra)
        out.append("")
    for ppair in diff.differing_procedures:
        out += [f"## {procedure_title(ppair)}", ""]
        if ppair.relation in ("added", "removed"):
            out += [procedure_outline(ppair), ""]
        if ppair.changes:
            out += ["### Changes", ""]
            for c in ordered(ppair.changes):
                out += _md_change(c, None)
        out.append("")
    if impact is not None:
        out += _impact_md(impact)
    return "\n".join(out).rstrip("\n") + "\n"


def _md_change(c: EntityChange, pair: EditionDiff | None) -> list[str]:
    return [f"- **{headline(c)}** ({EFFECT_WORDS[c.effect]})", *_md_rows(rows(c, pair))]


def _md_rows(items: list[Row]) -> list[str]:
    out = []
    for r in items:
        if r.minus or r.plus:
            out.append(f"  - {r.label}:")
            out += [f"    - removed: {m}" for m in r.minus]
            out += [f"    - added: {p}" for p in r.plus]
        elif r.old is not None and r.new is not None:
            out.append(f"  - {r.label}: {r.old} → {r.new}")
        else:
            out.append(f"  - {r.label}: {r.new if r.new is not None else r.old}")
    return out


def _impact_md(r: ImpactReport) -> list[str]:
    what = "generated cases (Hypothesis, over the changed region)" if r.mode == "generated" else f"`{r.corpus}`"
    out = ["## Impact", "", f"Cases: {what}; engine `{r.engine}`.", ""]
    out += [f"- note: {n}" for n in r.notes]
    out += [
        f"- {r.entries:,} cases: {r.compared:,} compared, {r.invalid:,} invalid, {r.errors:,} engine errors",
        f"- changed: **{r.changed_cases:,} cases, {r.changed_items:,} items**; {r.basis_only_items:,} more items keep "
        "their decision but cite another rule or edition",
        "",
    ]
    if r.changed_items:
        out += [f"**{visits_line(r)}**", ""]
        out += breakdown_md("jurisdiction", r.by_jurisdiction)
        out += breakdown_md("service", r.by_service_visits)
        out += breakdown_md("month of service", r.by_month)
        out += ["| service | kind of change | items |", "|---|---|---:|"]
        out += [f"| {s} | {kind_text(k)} | {n:,} |" for s, k, n in r.by_service_kind]
        out.append("")
        if r.by_imr:
            out += ["| IMR outcome | items |", "|---|---:|"]
            out += [f"| {o} → {w} | {n:,} |" for (o, w), n in r.by_imr]
            out.append("")
        out += ["| cause | what changed in it | items |", "|---|---|---:|"]
        out += [f"| {_md(c.label)} | {_md('; '.join(c.notes)) or '—'} | {n:,} |" for c, n in r.by_cause]
        out += ["", "### Examples", "", f"{examples_note(r)}.", ""]
        for e in r.examples:
            out += [
                f"- {example_line(e)}" + (" (shrunk)" if e.shrunk else ""),
                f"  - old basis: {decisive_text(e.change.old)}",
                f"  - new basis: {decisive_text(e.change.new)}",
                f"  - cause: {e.cause.label}",
                "",
                "  ```yaml",
                *("  " + line for line in case_yaml(e).splitlines()),
                "  ```",
                "",
            ]
    if r.problems:
        out += ["### Problems (first ones)", "", *(f"- `{p}`" for p in r.problems), ""]
    return out


# ---------------------------------------------------------------------------------------------- json


def json_document(diff: PolicyDiff, *, old: str, new: str, impact: ImpactReport | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"format": FORMAT_VERSION, "old": old, "new": new, "summary": summary_line(diff)}
    doc.update(diff.to_dict())
    if impact is not None:
        doc["impact"] = plain(impact.to_dict())
    return doc


__all__ = ["Row", "json_document", "markdown", "procedure_outline", "procedure_title", "rows", "text"]

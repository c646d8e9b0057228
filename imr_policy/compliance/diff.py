"""A semantic diff of two policy sets: what changed between guideline editions, entity by entity.

The diff works on the validated, immutable model (Edition, Rule, Limit, Citation, RuleException,
Silence, and the jurisdiction profiles), never on YAML text, so reformatting, reordering citations or
renaming a limit is not mistaken for a change of what a pack decides.

Pairing editions (a compliance user names sides as whole policy sets, single rule files, or
`<guideline>@<edition>`):

* per guideline id; when each side holds exactly one edition of a guideline, the two are paired
  whatever their edition ids (`odg@2015-03` against `odg@2016-01` is a comparison of successive
  editions);
* otherwise editions are paired by edition id; an edition only on the new side is `added`, and is
  also compared with the edition it succeeds on the old side (the latest one of the same guideline
  that starts before it), so adding the 2016 ODG edition next to the 2015 one shows what the 2016
  edition changes; an edition only on the old side is `removed`.

Within an edition pair, citations, limits, rules and exceptions are matched by id; what is left is
matched by content (a rename), citations first, so that renamed citations and limits are followed
through the rules that refer to them and reported once. Every field change is classed by its
effect: `decision` (it can change what is decided: a limit's value, a condition, an outcome, the
order of rules, effective dates), `basis` (it changes what a determination cites or says: citations,
provenance, reasons) or `text` (descriptions, titles).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Literal

from imr_policy.loading.procedure import WEEKDAYS, Holiday, HolidayYear, Procedure, TimeLimit
from imr_policy.loading.yamlsrc import child_path
from imr_policy.model.values import (
    AnyOf,
    Citation,
    Clause,
    Condition,
    ConditionRow,
    Edition,
    Invariant,
    Limit,
    NotOf,
    RowNumbers,
    Rule,
    RuleException,
    clause_text,
    leaves,
)

Effect = Literal["decision", "basis", "text"]
Entity = Literal[
    "jurisdiction",
    "edition",
    "citation",
    "limit",
    "condition",
    "rule",
    "exception",
    "silence",
    "invariant",
    # of a UR procedural pack (imr_policy/loading/procedure.py)
    "procedure",
    "calendar",
    "holiday-year",
    "receipt",
    "time-limit",
    "consequence",
    "letter",
    "letter-element",
    "source",
]
ChangeKind = Literal["added", "removed", "changed", "renamed"]
Relation = Literal["same", "paired", "successor", "added", "removed"]

EFFECTS: tuple[Effect, ...] = ("decision", "basis", "text")
RENAME_THRESHOLD = 0.75  # content similarity (0..1) above which an unmatched pair counts as a rename
# what can change whether a UR decision is timely, when it is added or removed (a source or a consequence's
# wording changes what is cited or said)
PROCEDURE_DECIDING = ("procedure", "calendar", "holiday-year", "receipt", "time-limit", "letter", "letter-element")


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of one entity: `old` and `new` are model values (conditions, dates, tuples)."""

    field: str
    old: Any
    new: Any
    effect: Effect


@dataclass(frozen=True, slots=True)
class EntityChange:
    """A citation, limit, rule, exception, silence, edition header or jurisdiction profile that differs.

    `old`/`new` are the model objects on each side (None where the entity is absent on that side).
    """

    entity: Entity
    kind: ChangeKind
    old_id: str | None
    new_id: str | None
    fields: tuple[FieldChange, ...] = ()
    old: Any = None
    new: Any = None
    similarity: float | None = None  # for renames
    old_at: str | None = None  # `file:line` of the entity on the old side, where the model knows it
    new_at: str | None = None

    @property
    def id(self) -> str:
        return self.new_id if self.new_id is not None else str(self.old_id)

    @property
    def effect(self) -> Effect:
        """The strongest effect of the change."""
        if self.kind in ("added", "removed"):
            deciding = ("rule", "exception", "silence", "jurisdiction", "limit", "condition", *PROCEDURE_DECIDING)
            return "decision" if self.entity in deciding else "basis"
        effects = {f.effect for f in self.fields} or {"basis"}  # a bare rename changes what the trace names
        return next(e for e in EFFECTS if e in effects)


@dataclass(frozen=True, slots=True)
class EditionDiff:
    """What changed between two editions of one guideline (or one edition that exists on one side only)."""

    guideline: str
    relation: Relation
    old: Edition | None
    new: Edition | None
    changes: tuple[EntityChange, ...] = ()

    @property
    def title(self) -> str:
        old = self.old.key if self.old else "(none)"
        new = self.new.key if self.new else "(none)"
        return f"{old} -> {new}"

    @property
    def differs(self) -> bool:
        return bool(self.changes) or self.relation in ("added", "removed")

    def for_rule(self, rule_id: str, *, side: Literal["old", "new"]) -> tuple[EntityChange, ...]:
        """The changes that bear on one rule: the rule itself, the limits and citation it uses, its exceptions."""
        edition = self.new if side == "new" else self.old
        out: list[EntityChange] = []
        for change in self.changes:
            rid = change.new_id if side == "new" else change.old_id
            if (change.entity == "rule" and rid == rule_id) or (
                edition is not None and change.entity == "limit" and rid in limits_of(edition, rule_id)
            ):
                out.append(change)
            elif edition is not None and change.entity == "exception":
                exc = change.new if side == "new" else change.old
                if isinstance(exc, RuleException) and rule_id in exc.rules:
                    out.append(change)
        return tuple(out)


@dataclass(frozen=True, slots=True)
class ProcedureDiff:
    """What changed between two UR procedural packs of one jurisdiction (or a pack on one side only)."""

    jurisdiction: str
    relation: Relation
    old: Procedure | None
    new: Procedure | None
    changes: tuple[EntityChange, ...] = ()

    @property
    def differs(self) -> bool:
        return bool(self.changes) or self.relation in ("added", "removed")


@dataclass(frozen=True, slots=True)
class PolicySet:
    """What the diff compares: the editions, jurisdiction profiles and UR procedural packs of one side."""

    editions: tuple[Edition, ...]
    profiles: tuple[Any, ...] = ()
    procedures: tuple[Procedure, ...] = ()
    where: str = ""  # the directory the files are named relative to, as the user named the side ("" unknown)


@dataclass(frozen=True, slots=True)
class PolicyDiff:
    editions: tuple[EditionDiff, ...]
    jurisdictions: tuple[EntityChange, ...] = ()
    procedures: tuple[ProcedureDiff, ...] = ()
    profiles_compared: int = 0  # jurisdiction profiles compared (both sides must carry profiles)

    @property
    def compared(self) -> int:
        """Edition pairs, procedural pack pairs and jurisdiction profiles looked at: 0 means nothing was
        comparable, which is never "equivalent"."""
        return len(self.editions) + len(self.procedures) + self.profiles_compared

    @property
    def equivalent(self) -> bool:
        return (
            self.compared > 0
            and not self.jurisdictions
            and not any(e.differs for e in self.editions)
            and not any(p.differs for p in self.procedures)
        )

    @property
    def differing(self) -> tuple[EditionDiff, ...]:
        return tuple(e for e in self.editions if e.differs)

    @property
    def differing_procedures(self) -> tuple[ProcedureDiff, ...]:
        return tuple(p for p in self.procedures if p.differs)

    def counts(self) -> dict[str, int]:
        """Changes by effect, over every edition pair, procedural pack pair and jurisdiction profile."""
        counts: dict[str, int] = dict.fromkeys(EFFECTS, 0)
        for change in (
            *self.jurisdictions,
            *(c for e in self.editions for c in e.changes),
            *(c for p in self.procedures for c in p.changes),
        ):
            counts[change.effect] += 1
        return counts

    def edition_for(self, guideline: str, old_edition: str | None, new_edition: str | None) -> EditionDiff | None:
        """The pair that compares these editions (or the closest one naming either of them)."""
        best: EditionDiff | None = None
        for e in self.editions:
            if e.guideline != guideline:
                continue
            o = e.old.edition_id if e.old else None
            n = e.new.edition_id if e.new else None
            if (o, n) == (old_edition, new_edition):
                return e
            if best is None and (o == old_edition or n == new_edition):
                best = e
        return best

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (the `--format json` contract)."""
        return {
            "equivalent": self.equivalent,
            "counts": self.counts(),
            "compared": {
                "edition_pairs": len(self.editions),
                "procedure_pairs": len(self.procedures),
                "jurisdiction_profiles": self.profiles_compared,
            },
            "jurisdictions": [_change_dict(c) for c in self.jurisdictions],
            "editions": [
                {
                    "guideline": e.guideline,
                    "relation": e.relation,
                    "old": _edition_ref(e.old),
                    "new": _edition_ref(e.new),
                    "changes": [_change_dict(c, e) for c in e.changes],
                }
                for e in self.editions
            ],
            "procedures": [
                {
                    "jurisdiction": p.jurisdiction,
                    "relation": p.relation,
                    "old": _procedure_ref(p.old),
                    "new": _procedure_ref(p.new),
                    "changes": [_change_dict(c) for c in p.changes],
                }
                for p in self.procedures
            ],
        }


# ---------------------------------------------------------------------------------------------- pairing


def diff_policy_sets(old: PolicySet, new: PolicySet) -> PolicyDiff:
    """Every difference between two validated policy sets."""
    pairs: list[EditionDiff] = []
    guidelines = sorted({e.guideline_id for e in (*old.editions, *new.editions)})
    for gid in guidelines:
        olds = sorted((e for e in old.editions if e.guideline_id == gid), key=_start)
        news = sorted((e for e in new.editions if e.guideline_id == gid), key=_start)
        if len(olds) == 1 and len(news) == 1:
            relation: Relation = "same" if olds[0].edition_id == news[0].edition_id else "paired"
            pairs.append(diff_editions(olds[0], news[0], relation=relation))
            continue
        old_by_id = {e.edition_id: e for e in olds}
        new_ids = {e.edition_id for e in news}
        for e in olds:
            if e.edition_id not in new_ids:
                pairs.append(EditionDiff(gid, "removed", e, None))
        for e in news:
            if e.edition_id in old_by_id:
                pairs.append(diff_editions(old_by_id[e.edition_id], e, relation="same"))
                continue
            pairs.append(EditionDiff(gid, "added", None, e))
            before = [o for o in olds if o.effective_from < e.effective_from]
            if before:
                pairs.append(diff_editions(before[-1], e, relation="successor"))
    profiles = len({p.jurisdiction for p in (*old.profiles, *new.profiles)}) if old.profiles and new.profiles else 0
    return PolicyDiff(
        tuple(pairs),
        _diff_profiles(old.profiles, new.profiles),
        diff_procedure_sets(old.procedures, new.procedures, old_where=old.where, new_where=new.where),
        profiles,
    )


def _start(e: Edition) -> tuple[dt.date, str]:
    return (e.effective_from, e.edition_id)


def diff_editions(old: Edition, new: Edition, *, relation: Relation = "same") -> EditionDiff:
    """Every difference between two editions of one guideline."""
    changes: list[EntityChange] = []
    header = _header_fields(old, new)

    cite_pairs = _match(
        old.citations, new.citations, key=lambda c: c.id, similarity=_citation_similarity, threshold=RENAME_THRESHOLD
    )
    cmap = {o.id: n.id for o, n in cite_pairs.matched}
    changes += _entity_changes("citation", cite_pairs, _citation_fields)

    limit_pairs = _match(
        old.limits,
        new.limits,
        key=lambda lim: lim.id,
        similarity=lambda o, n: _limit_similarity(o, n, cmap),
        threshold=RENAME_THRESHOLD,
    )
    lmap = {o.id: n.id for o, n in limit_pairs.matched}
    changes += _entity_changes("limit", limit_pairs, lambda o, n: _limit_fields(o, n, cmap))

    rule_pairs = _match(
        old.rules,
        new.rules,
        key=lambda r: r.id,
        similarity=lambda o, n: _rule_similarity(o, n, cmap, lmap),
        threshold=RENAME_THRESHOLD,
    )
    rmap = {o.id: n.id for o, n in rule_pairs.matched}
    changes += _entity_changes("rule", rule_pairs, lambda o, n: _rule_fields(o, n, cmap, lmap))

    exc_pairs = _match(
        old.exceptions,
        new.exceptions,
        key=lambda x: x.id,
        similarity=lambda o, n: _exception_similarity(o, n, cmap, lmap, rmap),
        threshold=RENAME_THRESHOLD,
    )
    changes += _entity_changes("exception", exc_pairs, lambda o, n: _exception_fields(o, n, cmap, lmap, rmap))

    silence_pairs = _match(old.silent_on, new.silent_on, key=lambda s: s.service, similarity=None, threshold=1.0)
    changes += _entity_changes(
        "silence", silence_pairs, lambda o, n: _fields((("citation", cmap.get(o.citation, o.citation), n.citation),))
    )

    # the rows of the tables by condition: what names a condition is what selects the rule that tests it
    row_pairs = _match(old.conditions, new.conditions, key=lambda r: r.id, similarity=None, threshold=1.0)
    changes += _entity_changes("condition", row_pairs, lambda o, n: _condition_row_fields(o, n, cmap))
    # invariants change what `verify` guarantees, not what is decided: a loosened one is still a change
    inv_pairs = _match(old.invariants, new.invariants, key=lambda i: i.id, similarity=None, threshold=1.0)
    changes += _entity_changes("invariant", inv_pairs, lambda o, n: _invariant_fields(o, n, cmap))

    header += _order_changes(old, new, rmap)
    if header:
        changes.insert(0, EntityChange("edition", "changed", old.key, new.key, tuple(header), old, new))
    return EditionDiff(new.guideline_id, relation, old, new, tuple(changes))


def _order_changes(old: Edition, new: Edition, rmap: Mapping[str, str]) -> list[FieldChange]:
    """The rules of a service whose order changed, where order decides (hit policy `first` on either side).
    Rules of different services never compete, so moving a service's rules past another's (as
    `imr-policy migrate` does when it groups them into decisions) is no change."""
    kept = set(rmap.values())
    out: list[FieldChange] = []
    services = dict.fromkeys(s for e in (old, new) for r in e.rules for s in r.services)
    for service in services:
        if old.hit_policy(service) == "unique" and new.hit_policy(service) == "unique":
            continue
        old_order = tuple(rmap[r.id] for r in old.rules_for(service) if r.id in rmap)
        new_order = tuple(r.id for r in new.rules_for(service) if r.id in kept)
        if old_order != new_order and (old_order, new_order) not in {(f.old, f.new) for f in out}:
            out.append(FieldChange("rule_order", old_order, new_order, "decision"))
    return out


def _header_fields(old: Edition, new: Edition) -> list[FieldChange]:
    return list(
        _fields(
            (
                ("guideline_title", old.guideline_title, new.guideline_title, "text"),
                ("family", old.family, new.family),
                ("tier", old.tier, new.tier),
                ("jurisdictions", old.jurisdictions, new.jurisdictions),
                ("edition_id", old.edition_id, new.edition_id, "basis"),
                ("edition_title", old.edition_title, new.edition_title, "basis"),
                ("effective_from", old.effective_from, new.effective_from),
                ("effective_to", old.effective_to, new.effective_to),
                ("selected_by", old.selected_by, new.selected_by),
                ("within", old.within, new.within),
                # the severities an unstated severity is read as: which readings decide
                ("severity_scales", _scales(old), _scales(new)),
                # the rows read when the diagnoses name no condition: which readings decide, and on what grade
                ("unnamed_condition", _unnamed(old), _unnamed(new)),
                # the post-surgical entries read when the records name the surgery, not the procedure
                ("unnamed_procedure", _unnamed_procedure(old), _unnamed_procedure(new)),
                # services whose visits count against one number: which count facts decide
                ("counted_together", _counted(old), _counted(new)),
                # how each service's rules combine (`first` when the pack does not say)
                ("hit_policies", _hit_policies(old), _hit_policies(new)),
            )
        )
    )


def _hit_policies(e: Edition) -> tuple[tuple[str, str], ...]:
    return tuple((s, e.hit_policy(s)) for s in sorted({s for r in e.rules for s in r.services}))


def _counted(e: Edition) -> str | None:
    return "; ".join(" with ".join(g.services) for g in e.counted_together) or None


def _unnamed(e: Edition) -> str | None:
    """The reading of diagnoses that name no condition, as one comparable text."""
    u = e.unnamed_condition
    if u is None:
        return None
    groups = "; ".join(f"for {', '.join(g.regions)} the rows {', '.join(g.rows)}" for g in u.regions)
    return f"{groups} [{u.provenance}]; words naming no condition: {', '.join(sorted(u.words))}"


def _unnamed_procedure(e: Edition) -> str | None:
    """The reading of a surgery whose procedure the records do not name, as one comparable text."""
    u = e.unnamed_procedure
    if u is None:
        return None
    rows = "; ".join(
        f"for {r.row} the entries {', '.join(r.procedures)}"
        + (f" (the row's words naming no entry: {', '.join(sorted(r.words))})" if r.words else "")
        for r in u.rows
    )
    return f"{rows} [{u.provenance}]; words naming no procedure: {', '.join(sorted(u.words))}"


def _scales(e: Edition) -> tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]:
    return tuple((s.services, s.values) for s in e.severity_scales)


# ---------------------------------------------------------------------------------------------- matching


@dataclass(frozen=True, slots=True)
class _Pairs:
    matched: tuple[tuple[Any, Any], ...]  # by id, then renames
    renamed: frozenset[tuple[str, str]]
    similarity: Mapping[tuple[str, str], float]
    removed: tuple[Any, ...]
    added: tuple[Any, ...]
    key: Callable[[Any], str]


def _match(
    old: Sequence[Any],
    new: Sequence[Any],
    *,
    key: Callable[[Any], str],
    similarity: Callable[[Any, Any], float] | None,
    threshold: float,
) -> _Pairs:
    new_by_key = {key(n): n for n in new}
    matched = [(o, new_by_key[key(o)]) for o in old if key(o) in new_by_key]
    old_left = [o for o in old if key(o) not in new_by_key]
    old_keys = {key(o) for o in old}
    new_left = [n for n in new if key(n) not in old_keys]
    renamed: set[tuple[str, str]] = set()
    scores: dict[tuple[str, str], float] = {}
    if similarity is not None and old_left and new_left:
        candidates = sorted(
            ((similarity(o, n), i, j) for i, o in enumerate(old_left) for j, n in enumerate(new_left)),
            key=lambda t: (-t[0], t[1], t[2]),
        )
        used_old: set[int] = set()
        used_new: set[int] = set()
        for score, i, j in candidates:
            if score < threshold:
                break
            if i in used_old or j in used_new:
                continue
            used_old.add(i)
            used_new.add(j)
            o, n = old_left[i], new_left[j]
            matched.append((o, n))
            renamed.add((key(o), key(n)))
            scores[(key(o), key(n))] = round(score, 2)
        old_left = [o for i, o in enumerate(old_left) if i not in used_old]
        new_left = [n for j, n in enumerate(new_left) if j not in used_new]
    return _Pairs(tuple(matched), frozenset(renamed), scores, tuple(old_left), tuple(new_left), key)


def _entity_changes(
    entity: Entity, pairs: _Pairs, fields: Callable[[Any, Any], tuple[FieldChange, ...]]
) -> list[EntityChange]:
    out: list[EntityChange] = []
    for o, n in pairs.matched:
        ko, kn = pairs.key(o), pairs.key(n)
        changed = fields(o, n)
        if (ko, kn) in pairs.renamed:
            out.append(EntityChange(entity, "renamed", ko, kn, changed, o, n, pairs.similarity[(ko, kn)]))
        elif changed:
            out.append(EntityChange(entity, "changed", ko, kn, changed, o, n))
    out += [EntityChange(entity, "removed", pairs.key(o), None, (), o, None) for o in pairs.removed]
    out += [EntityChange(entity, "added", None, pairs.key(n), (), None, n) for n in pairs.added]
    return out


def _fields(spec: Iterable[tuple[Any, ...]]) -> tuple[FieldChange, ...]:
    """(name, old, new[, effect]) -> the field changes where old != new (effect defaults to `decision`)."""
    out = []
    for item in spec:
        name, old, new = item[0], item[1], item[2]
        effect: Effect = item[3] if len(item) > 3 else "decision"
        if old != new:
            out.append(FieldChange(name, old, new, effect))
    return tuple(out)


def _ratio(a: str, b: str) -> float:
    return 1.0 if a == b else difflib.SequenceMatcher(None, a, b).ratio()


def _mean(values: Iterable[float]) -> float:
    items = list(values)
    return sum(items) / len(items)


def _jaccard(a: Iterable[Any], b: Iterable[Any]) -> float:
    sa, sb = set(a), set(b)
    return 1.0 if not sa and not sb else len(sa & sb) / len(sa | sb)


# ---------------------------------------------------------------------------------------------- entities


def _condition_row_fields(o: ConditionRow, n: ConditionRow, cmap: Mapping[str, str]) -> tuple[FieldChange, ...]:
    return _fields(
        (
            ("title", o.title, n.title, "text"),
            ("regions", o.regions, n.regions),
            ("icd9", o.icd9, n.icd9),
            ("icd10", o.icd10, n.icd10),
            ("words", o.words, n.words),
            ("words_in_region", o.words_in_region, n.words_in_region),
            ("general_words", o.general_words, n.general_words),
            ("procedure_words", o.procedure_words, n.procedure_words),
            ("medical", _numbers(o.medical), _numbers(n.medical)),
            ("citation", cmap.get(o.citation, o.citation) if o.citation else None, n.citation, "basis"),
        )
    )


def _numbers(numbers: RowNumbers | None) -> str | None:
    return None if numbers is None else f"{numbers.limit} over {numbers.over}"


def _invariant_fields(o: Invariant, n: Invariant, cmap: Mapping[str, str]) -> tuple[FieldChange, ...]:
    return _fields(
        (
            ("description", o.description, n.description, "text"),
            ("max", o.max, n.max, "basis"),
            ("services", o.services, n.services, "basis"),
            ("counts", o.counts, n.counts, "basis"),
            ("unless", o.unless, n.unless, "basis"),
            ("citation", cmap.get(o.citation, o.citation), n.citation, "basis"),
        )
    )


def _citation_fields(o: Citation, n: Citation) -> tuple[FieldChange, ...]:
    return _fields(
        (
            ("section", o.section, n.section, "basis"),
            ("pages", o.pages, n.pages, "basis"),
            ("quote", o.quote, n.quote, "basis"),
            ("provenance", o.provenance, n.provenance, "basis"),
            ("source", o.source, n.source, "basis"),
        )
    )


def _citation_similarity(o: Citation, n: Citation) -> float:
    return 0.5 * _ratio(o.quote, n.quote) + 0.3 * _ratio(o.section, n.section) + 0.2 * float(o.pages == n.pages)


def _limit_fields(o: Limit, n: Limit, cmap: Mapping[str, str]) -> tuple[FieldChange, ...]:
    return _fields(
        (
            ("value", o.value, n.value),
            ("range", o.range, n.range, "basis"),
            ("unit", o.unit, n.unit, "basis"),
            ("citation", cmap.get(o.citation, o.citation), n.citation, "basis"),
            ("provenance", o.provenance, n.provenance, "basis"),
            ("description", o.description, n.description, "text"),
        )
    )


def _limit_similarity(o: Limit, n: Limit, cmap: Mapping[str, str]) -> float:
    same = (o.value == n.value, o.range == n.range, o.unit == n.unit, cmap.get(o.citation, o.citation) == n.citation)
    return _mean((*map(float, same), _ratio(o.description, n.description)))


def _conditions(conds: Iterable[Clause], lmap: Mapping[str, str]) -> tuple[Clause, ...]:
    """The clauses with the old edition's limit ids read as the new edition's (renamed limits)."""
    return tuple(_renamed(c, lmap) for c in conds)


def _renamed(c: Clause, lmap: Mapping[str, str]) -> Clause:
    if isinstance(c, Condition):
        return dataclasses.replace(c, limit=lmap.get(c.limit, c.limit)) if c.limit else c
    if isinstance(c, AnyOf):
        return AnyOf(_conditions(c.clauses, lmap))
    return NotOf(_renamed(c.clause, lmap))


def _rule_fields(o: Rule, n: Rule, cmap: Mapping[str, str], lmap: Mapping[str, str]) -> tuple[FieldChange, ...]:
    oo, no = o.outcome, n.outcome

    def lim(x: str | None) -> str | None:
        return lmap.get(x, x) if x else x

    old_when = _conditions(o.when, lmap)
    return _fields(
        (
            ("services", n.services if set(o.services) == set(n.services) else o.services, n.services),
            ("citation", cmap.get(o.citation, o.citation), n.citation, "basis"),
            ("when", old_when if set(old_when) != set(n.when) else n.when, n.when),
            ("outcome.decision", oo.decision, no.decision),
            ("outcome.up_to_total", lim(oo.up_to_total), no.up_to_total),
            ("outcome.up_to_per_request", lim(oo.up_to_per_request), no.up_to_per_request),
            ("outcome.ceiling", lim(oo.ceiling), no.ceiling, "basis"),
            ("outcome.missing", oo.missing, no.missing),
            ("outcome.reason", oo.reason, no.reason, "basis"),
            ("provenance", o.provenance, n.provenance, "basis"),
            ("description", o.description, n.description, "text"),
        )
    )


def _rule_similarity(o: Rule, n: Rule, cmap: Mapping[str, str], lmap: Mapping[str, str]) -> float:
    if o.outcome.decision != n.outcome.decision or not set(o.services) & set(n.services):
        return 0.0
    oo, no = o.outcome, n.outcome
    same_outcome = (
        lmap.get(oo.up_to_total or "", oo.up_to_total) == no.up_to_total
        and lmap.get(oo.up_to_per_request or "", oo.up_to_per_request) == no.up_to_per_request
        and oo.missing == no.missing
    )
    return _mean(
        (
            _jaccard(_conditions(o.when, lmap), n.when),
            float(same_outcome),
            float(cmap.get(o.citation, o.citation) == n.citation),
            _jaccard(o.services, n.services),
            _ratio(oo.reason, no.reason),
        )
    )


def _exception_fields(
    o: RuleException, n: RuleException, cmap: Mapping[str, str], lmap: Mapping[str, str], rmap: Mapping[str, str]
) -> tuple[FieldChange, ...]:
    old_when = _conditions(o.when, lmap)
    return _fields(
        (
            ("rules", tuple(rmap.get(r, r) for r in o.rules), n.rules),
            ("citation", cmap.get(o.citation, o.citation), n.citation, "basis"),
            ("when", old_when if set(old_when) != set(n.when) else n.when, n.when),
            ("raises_total", lmap.get(o.raises_total, o.raises_total), n.raises_total),
            ("provenance", o.provenance, n.provenance, "basis"),
            ("description", o.description, n.description, "text"),
        )
    )


def _exception_similarity(
    o: RuleException, n: RuleException, cmap: Mapping[str, str], lmap: Mapping[str, str], rmap: Mapping[str, str]
) -> float:
    return _mean(
        (
            _jaccard((rmap.get(r, r) for r in o.rules), n.rules),
            _jaccard(_conditions(o.when, lmap), n.when),
            float(lmap.get(o.raises_total, o.raises_total) == n.raises_total),
            float(cmap.get(o.citation, o.citation) == n.citation),
        )
    )


def _diff_profiles(old: Sequence[Any], new: Sequence[Any]) -> tuple[EntityChange, ...]:
    """Jurisdiction profiles (the evidence search sequence). A side that carries none (a single rule file)
    is compared on its editions only."""
    if not old or not new:
        return ()
    pairs = _match(old, new, key=lambda p: str(p.jurisdiction), similarity=None, threshold=1.0)

    def fields(o: Any, n: Any) -> tuple[FieldChange, ...]:
        names = [f.name for f in dataclasses.fields(o) if f.name not in ("jurisdiction", "file", "sha256")]
        effects: dict[str, Effect] = {"title": "text", "authority": "basis", "source": "basis"}
        return _fields((name, getattr(o, name), getattr(n, name), effects.get(name, "decision")) for name in names)

    return tuple(_entity_changes("jurisdiction", pairs, fields))


# ---------------------------------------------------------------------------------------------- procedural packs


ItemFields = tuple[tuple[str, Any, Effect], ...]


@dataclass(frozen=True, slots=True)
class ProcedureItem:
    """One comparable part of a UR procedural pack (a time limit, a year's holidays, a receipt rule, ...):
    its fields as (name, value, effect of a change) and the JSON path it is written at in its file."""

    entity: Entity
    id: str
    path: str
    fields: ItemFields


def diff_procedure_sets(
    old: Sequence[Procedure], new: Sequence[Procedure], *, old_where: str = "", new_where: str = ""
) -> tuple[ProcedureDiff, ...]:
    """Packs paired per jurisdiction as editions are per guideline: the only pack of each side with each
    other, else by id, a pack only on the new side also with the one it succeeds on the old side. Each
    side's files are named under its `where` (see PolicySet)."""
    where = {"old_where": old_where, "new_where": new_where}
    pairs: list[ProcedureDiff] = []
    for jur in sorted({p.jurisdiction for p in (*old, *new)}):
        olds = sorted((p for p in old if p.jurisdiction == jur), key=lambda p: (p.effective_from, p.id))
        news = sorted((p for p in new if p.jurisdiction == jur), key=lambda p: (p.effective_from, p.id))
        if len(olds) == 1 and len(news) == 1:
            relation: Relation = "same" if olds[0].id == news[0].id else "paired"
            pairs.append(diff_procedures(olds[0], news[0], relation=relation, **where))
            continue
        old_by_id = {p.id: p for p in olds}
        new_ids = {p.id for p in news}
        pairs += [ProcedureDiff(jur, "removed", p, None) for p in olds if p.id not in new_ids]
        for p in news:
            if p.id in old_by_id:
                pairs.append(diff_procedures(old_by_id[p.id], p, relation="same", **where))
                continue
            pairs.append(ProcedureDiff(jur, "added", None, p))
            before = [o for o in olds if o.effective_from < p.effective_from]
            if before:
                pairs.append(diff_procedures(before[-1], p, relation="successor", **where))
    return tuple(pairs)


def diff_procedures(
    old: Procedure, new: Procedure, *, relation: Relation = "same", old_where: str = "", new_where: str = ""
) -> ProcedureDiff:
    """Every difference between two procedural packs, part by part, each with its `file:line` on either side."""
    olds = {_key(i): i for i in procedure_items(old)}
    news = {_key(i): i for i in procedure_items(new)}

    def at_old(item: ProcedureItem) -> str:
        return _at(old, item, old_where)

    def at_new(item: ProcedureItem) -> str:
        return _at(new, item, new_where)

    renamed = _renamed_time_limits(olds, news)
    changes: list[EntityChange] = []
    for key, o in olds.items():
        target = renamed.get(key, key)
        n = news.get(target)
        if n is None:
            changes.append(EntityChange(o.entity, "removed", o.id, None, (), o, None, old_at=at_old(o)))
            continue
        fields = _fields(
            (name, ov, nv, effect) for (name, ov, effect), (_, nv, _) in zip(o.fields, n.fields, strict=True)
        )
        if fields or target != key:
            kind: ChangeKind = "renamed" if target != key else "changed"
            changes.append(EntityChange(o.entity, kind, o.id, n.id, fields, o, n, old_at=at_old(o), new_at=at_new(n)))
    paired = {renamed.get(k, k) for k in olds}
    changes += [
        EntityChange(n.entity, "added", None, n.id, (), None, n, new_at=at_new(n))
        for key, n in news.items()
        if key not in paired
    ]
    return ProcedureDiff(new.jurisdiction, relation, old, new, tuple(changes))


def _renamed_time_limits(
    olds: Mapping[tuple[str, str], ProcedureItem], news: Mapping[tuple[str, str], ProcedureItem]
) -> dict[tuple[str, str], tuple[str, str]]:
    """A time limit under another id that applies to the same review kinds in the same case (`when`) is
    the same limit renamed: each review kind has one limit and at most one extension (procedure.py)."""

    def kinds(item: ProcedureItem) -> tuple[Any, Any]:
        values = {name: value for name, value, _ in item.fields}
        return (values["applies_to"], values["when"])

    gone = [k for k in olds if k[0] == "time-limit" and k not in news]
    came = {kinds(news[k]): k for k in news if k[0] == "time-limit" and k not in olds}
    return {k: came[kinds(olds[k])] for k in gone if kinds(olds[k]) in came}


def _key(item: ProcedureItem) -> tuple[str, str]:
    """What pairs the parts of two packs: the entity and its id (a pack's own header by its entity alone)."""
    return (item.entity, "" if item.entity == "procedure" else item.id)


def _at(p: Procedure, item: ProcedureItem, where: str) -> str:
    file = str(PurePath(where) / p.file) if where else p.file
    line = p.line(item.path)
    return f"{file}:{line}" if line is not None else file


def procedure_items(p: Procedure) -> tuple[ProcedureItem, ...]:
    """What the diff compares in a pack, in file order. Holiday rules are compared through the days they
    give in each year (what decides), never as rules."""
    items = [
        ProcedureItem(
            "procedure",
            p.id,
            "$.procedure",
            (
                ("id", p.id, "basis"),
                ("title", p.title, "text"),
                ("effective_from", p.effective_from, "decision"),
                ("effective_to", p.effective_to, "decision"),
                ("not_covered_before", p.not_covered_before, "basis"),
                ("not_covered_after", p.not_covered_after, "basis"),
            ),
        ),
        ProcedureItem("calendar", "time-zone", "$.time_zone", (("time_zone", p.time_zone, "decision"),)),
        ProcedureItem(
            "calendar",
            "business-weekdays",
            "$.calendar.business_weekdays",
            (
                ("business_weekdays", tuple(WEEKDAYS[d] for d in sorted(p.business_weekdays)), "decision"),
                ("provenance", p.weekdays_provenance, "basis"),
                ("source", p.weekdays_source, "basis"),
            ),
        ),
        ProcedureItem(
            "calendar",
            "holiday-rules",
            "$.calendar.holidays.rules",
            (("provenance", p.holiday_rules_provenance, "basis"), ("source", p.holiday_rules_source, "basis")),
        ),
        ProcedureItem(
            "calendar", "unknown-years", "$.calendar.holidays.unknown_years", (("says", p.unknown_years, "basis"),)
        ),
        *(_holiday_year(year, h) for year, h in p.holidays),
        *_receipt_items(p),
        *(_time_limit(i, lim) for i, lim in enumerate(p.limits)),
        ProcedureItem(
            "consequence",
            "untimely",
            "$.consequence",
            (("untimely", p.consequence, "basis"), ("source", p.consequence_source, "basis")),
        ),
    ]
    if p.letter_source is not None:
        letter: ItemFields = (("source", p.letter_source, "basis"), ("provenance", p.letter_provenance, "basis"))
        items.append(ProcedureItem("letter", "letter", "$.letter", letter))
    items += [
        ProcedureItem("letter-element", eid, f"$.letter.elements[{i}]", (("says", says, "basis"),))
        for i, (eid, says) in enumerate(p.letter)
    ]
    items += [
        ProcedureItem("source", s.id, f"$.sources[{i}]", (("title", s.title, "basis"), ("address", s.address, "basis")))
        for i, s in enumerate(p.sources)
    ]
    return tuple(items)


def _holiday_year(year: int, h: HolidayYear) -> ProcedureItem:
    return ProcedureItem(
        "holiday-year",
        str(year),
        child_path("$.calendar.holidays.years", str(year)),
        (
            ("days", tuple(sorted(h.dates)), "decision"),
            ("uncertain", tuple(x.day for x in h.uncertain), "decision"),
            (
                "names",
                tuple(f"{x.day.isoformat()} {x.name}" for x in sorted((*h.holidays, *h.uncertain), key=_day)),
                "text",
            ),
            ("why_uncertain", tuple(f"{x.day.isoformat()}: {x.why}" for x in h.uncertain), "basis"),
            ("basis", h.basis, "basis"),
            ("provenance", h.provenance, "basis"),
            ("source", h.source, "basis"),
        ),
    )


def _day(h: Holiday) -> dt.date:
    return h.day


def _receipt_items(p: Procedure) -> list[ProcedureItem]:
    cited: ItemFields = (("provenance", p.day_zero_provenance, "basis"), ("source", p.day_zero_source, "basis"))
    items = [
        ProcedureItem("receipt", "day-zero", "$.receipt.day_zero", cited),
        ProcedureItem(
            "receipt",
            "cutoff",
            "$.receipt.cutoff",
            (
                ("after", p.cutoff, "decision"),
                ("channels", tuple(sorted(p.cutoff_channels)), "decision"),
                ("provenance", p.cutoff_provenance, "basis"),
                ("source", p.cutoff_source, "basis"),
            ),
        ),
        ProcedureItem(
            "receipt",
            "mail",
            "$.receipt.mail",
            (
                ("presumed_received_after_days", p.mail_days, "decision"),
                ("provenance", p.mail_provenance, "basis"),
                ("source", p.mail_source, "basis"),
            ),
        ),
    ]
    # a question the sources do not answer makes the engine take both answers: adding one changes decisions
    items += [
        ProcedureItem("receipt", f"unknown.{key}", f"$.receipt.unknown.{key}", (("says", why, "basis"),))
        for key, why in p.unknown
    ]
    return items


def _time_limit(i: int, lim: TimeLimit) -> ProcedureItem:
    return ProcedureItem(
        "time-limit",
        lim.id,
        f"$.limits[{i}]",
        (
            ("applies_to", lim.applies_to, "decision"),
            ("when", lim.when, "decision"),
            ("value", lim.value, "decision"),
            ("unit", lim.unit, "decision"),
            ("requested_within", lim.requested_within, "decision"),
            ("rule", lim.rule, "basis"),
            ("provenance", lim.provenance, "basis"),
            ("source", lim.source, "basis"),
        ),
    )


def _procedure_ref(p: Procedure | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {
        "id": p.id,
        "jurisdiction": p.jurisdiction,
        "title": p.title,
        "effective_from": p.effective_from.isoformat(),
        "effective_to": p.effective_to.isoformat() if p.effective_to else None,
        "file": p.file,
        "time_limits": len(p.limits),
        "holiday_years": [year for year, _ in p.holidays],
    }


# ---------------------------------------------------------------------------------------------- helpers


def limits_of(edition: Edition, rule_id: str) -> frozenset[str]:
    """The limits a rule uses: in its conditions, its outcome, and through the exceptions that raise it."""
    try:
        rule = edition.rule(rule_id)
    except KeyError:
        return frozenset()
    used = {c.limit for c in leaves(rule.when) if c.limit}
    used |= {x for x in (rule.outcome.up_to_total, rule.outcome.up_to_per_request, rule.outcome.ceiling) if x}
    for exc in edition.exceptions:
        if rule_id in exc.rules:
            used.add(exc.raises_total)
            used |= {c.limit for c in leaves(exc.when) if c.limit}
    return frozenset(used)


def limit_users(edition: Edition, limit_id: str) -> tuple[str, ...]:
    """`rule <id>` / `exception <id>` for everything in `edition` that uses the limit, in file order."""
    users = [f"rule {r.id}" for r in edition.rules if limit_id in limits_of(edition, r.id)]
    users += [
        f"exception {x.id}"
        for x in edition.exceptions
        if limit_id == x.raises_total or any(c.limit == limit_id for c in leaves(x.when))
    ]
    return tuple(dict.fromkeys(users))


def condition_text(cond: Clause, edition: Edition | None = None) -> str:
    """`completed < psychotherapy.trial-visits (6)`: a condition as a reviewer reads it (`any:` and `not:`
    as "(a, or b)" and "not (a)")."""
    if not isinstance(cond, Condition):
        return clause_text(cond, lambda c: condition_text(c, edition))
    symbols = {"eq": "=", "ne": "!=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
    if cond.op in ("present", "absent"):
        return f"{cond.fact} is {'given' if cond.op == 'present' else 'not given'}"
    if cond.limit:
        value = ""
        if edition is not None:
            try:
                value = f" ({edition.limit(cond.limit).value})"
            except KeyError:
                value = ""
        operand = f"{cond.limit}{value}"
    elif isinstance(cond.value, tuple):
        operand = "[" + ", ".join(value_text(v) for v in cond.value) + "]"
    else:
        operand = value_text(cond.value)
    op = symbols.get(cond.op, cond.op.replace("_", " "))
    return f"{cond.fact} {op} {operand}"


_LONG_FIELDS = frozenset({"quote", "source", "description", "outcome.reason", "guideline_title", "edition_title"})


def change_summary(c: EntityChange, pair: EditionDiff | None = None) -> str:
    """One line of plain text: `limit `psychotherapy.max-visits`: value 20 -> 24, range 13-20 -> 13-24`."""
    if c.kind == "added":
        return f"{c.entity} `{c.new_id}` added"
    if c.kind == "removed":
        return f"{c.entity} `{c.old_id}` removed"
    parts = [f"renamed from `{c.old_id}`"] if c.kind == "renamed" else []
    for f in c.fields:
        if f.field in _LONG_FIELDS:
            parts.append(f"{f.field} reworded")
        elif f.field == "when":
            edition_old = pair.old if pair else None
            edition_new = pair.new if pair else None
            gone = [condition_text(x, edition_old) for x in f.old if x not in f.new]
            came = [condition_text(x, edition_new) for x in f.new if x not in f.old]
            parts.append("conditions " + "; ".join([*(f"- {g}" for g in gone), *(f"+ {n}" for n in came)]))
        else:
            parts.append(f"{f.field} {value_text(f.old)} -> {value_text(f.new)}")
    return f"{c.entity} `{c.id}`: " + ", ".join(parts)


def value_text(value: Any) -> str:
    """A field value as text (dates ISO, booleans lowercase, tuples comma-separated, None as `none`)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat(timespec="minutes")
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return f"{value[0]}-{value[1]}"
    if isinstance(value, tuple | list | frozenset):
        return ", ".join(value_text(v) for v in value) or "(none)"
    return str(value)


def plain(value: Any) -> Any:
    """A model value as JSON-ready data."""
    if isinstance(value, Condition):
        out: dict[str, Any] = {"fact": value.fact, "op": value.op}
        if value.limit:
            out["limit"] = value.limit
        elif value.op not in ("present", "absent"):
            out["value"] = plain(value.value)
        return out
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat(timespec="minutes")
    if isinstance(value, frozenset):
        return sorted(plain(v) for v in value)
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def _edition_ref(e: Edition | None) -> dict[str, Any] | None:
    if e is None:
        return None
    return {
        "key": e.key,
        "guideline": e.guideline_id,
        "edition": e.edition_id,
        "title": e.edition_title,
        "effective_from": e.effective_from.isoformat(),
        "effective_to": e.effective_to.isoformat() if e.effective_to else None,
        "file": e.file,
        "rules": len(e.rules),
        "limits": len(e.limits),
    }


def _citation_dict(edition: Edition | None, citation_id: str | None) -> dict[str, Any] | None:
    if edition is None or citation_id is None:
        return None
    try:
        return plain(edition.citation(citation_id))  # type: ignore[no-any-return]
    except KeyError:
        return None


def _change_dict(c: EntityChange, e: EditionDiff | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "entity": c.entity,
        "change": c.kind,
        "id": c.id,
        "old_id": c.old_id,
        "new_id": c.new_id,
        "effect": c.effect,
        "fields": [{"field": f.field, "old": plain(f.old), "new": plain(f.new), "effect": f.effect} for f in c.fields],
    }
    if c.similarity is not None:
        out["similarity"] = c.similarity
    if c.old_at is not None or c.new_at is not None:
        out["old_at"], out["new_at"] = c.old_at, c.new_at
    if c.kind in ("added", "removed"):
        value = c.new if c.kind == "added" else c.old
        out["value"] = (
            {name: plain(v) for name, v, _ in value.fields} if isinstance(value, ProcedureItem) else plain(value)
        )
    if c.entity == "limit" and e is not None:
        old_lim = c.old if isinstance(c.old, Limit) else None
        new_lim = c.new if isinstance(c.new, Limit) else None
        out["old_citation"] = _citation_dict(e.old, old_lim.citation if old_lim else None)
        out["new_citation"] = _citation_dict(e.new, new_lim.citation if new_lim else None)
        out["used_by"] = {
            "old": list(limit_users(e.old, c.old_id)) if e.old and c.old_id else [],
            "new": list(limit_users(e.new, c.new_id)) if e.new and c.new_id else [],
        }
    return out


__all__ = [
    "EditionDiff",
    "EntityChange",
    "FieldChange",
    "PolicyDiff",
    "PolicySet",
    "ProcedureDiff",
    "ProcedureItem",
    "change_summary",
    "condition_text",
    "diff_editions",
    "diff_policy_sets",
    "diff_procedure_sets",
    "diff_procedures",
    "limit_users",
    "limits_of",
    "plain",
    "procedure_items",
    "value_text",
]

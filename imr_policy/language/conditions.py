"""Diagnosis codes and condition tables: which row of a guideline's table by condition a case names.

Two questions, both answered before any rule is matched:

* **Which code system is a diagnosis code in?** `code_systems` reads the code's form: ICD-9-CM is
  three digits (`847.2`, `722.10`), `V` and two digits (`V58.81`) or `E` and three digits (`E880.9`);
  ICD-10-CM is a letter, a digit and a digit or `A`/`B`, then a dot and up to four characters
  (`M54.16`, `S83.241A`). Only one form fits both: `V`, two digits and at most two more digits
  (`V58.81` is an ICD-9-CM supplementary code and an ICD-10-CM transport-accident code). Such a code
  is read by the dates of service, since the United States switched on 2015-10-01 (`infer_code_system`).
* **Which rows of an edition's `conditions:` table do the diagnoses match?** (`match_rows`) A
  diagnosis with a code matches rows by code prefix in its own system (`icd9` for ICD-9-CM, `icd10`
  for ICD-10-CM). A diagnosis without a code, or whose code matches no row, matches by its words: the
  description and each row's phrases are casefolded, every run of characters other than letters and
  digits becomes a space, and a word ending in `s` (longer than three letters) also counts without it;
  a phrase matches when every one of its words occurs among the description's words, in any order
  ("accepted lumbar sprain/strain" -> {accepted, lumbar, sprain, strain} contains "lumbar sprain" and
  "lumbar strain"). Rows that list `regions` are kept only when the request has no body region or names
  one of them (every word of a region among the body region's words: "Right knee" names `knee`); a row's
  `words_in_region` phrases match only when the request names one of those regions.
  A row's `general_words` ("rotator cuff", listed by every row whose condition it names) are tried
  last, for a diagnosis that no row's code or other words match: such a diagnosis names every row
  that lists the phrase, and the evaluator reads the rows one by one. For a post-surgical request whose
  diagnoses name no row by a code or a row's own words, the rows whose `procedure_words` occur in the
  procedure ("left wrist flexor tenosynovectomy") are the ones matched; without a body region, the region the
  procedure's own words name narrows them ("cervical fusion": the neck's rows, not the low back's).
* **A diagnosis that names only the injured part** ("compensable lumbar injury": every word is one of
  the table's `unnamed_condition.words` or a word of the request's body region), or no diagnosis at all,
  names no condition. Where the table declares rows for the request's body region (or, for a request
  without one, for the region the description names), those rows are the ones matched (`region`), and the
  evaluator reads them one by one: the guideline decides only when every row gives the same result. A
  diagnosis with a code, or with any other word, names a condition, so a condition the table does not
  list is never read as one it does.

Nothing here reads durable_rules; the evaluator turns the rows matched into the `condition` fact.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from imr_policy.model.values import (
    Case,
    ConditionMatch,
    ConditionRow,
    Diagnosis,
    Request,
    UnnamedCondition,
    UnnamedProcedure,
)

CodeSystem = Literal["ICD-9-CM", "ICD-10-CM"]
ICD10_START = dt.date(2015, 10, 1)  # services from this day are coded in ICD-10-CM

ICD10_CODE = re.compile(r"[A-TV-Z][0-9][0-9AB](\.[0-9A-TV-Z]{1,4})?")
ICD9_CODE = re.compile(r"[0-9]{3}(\.[0-9]{1,2})?|V[0-9]{2}(\.[0-9]{1,2})?|E[0-9]{3}(\.[0-9])?")
# code prefixes as a rule pack writes them: the start of a code, as printed
ICD10_PREFIX = re.compile(r"[A-TV-Z][0-9][0-9AB]?(\.[0-9A-TV-Z]{0,4})?|[A-TV-Z][0-9]?")
ICD9_PREFIX = re.compile(
    r"[0-9]{1,3}|[0-9]{3}\.[0-9]{0,2}|V[0-9]{0,2}|V[0-9]{2}\.[0-9]{0,2}|E[0-9]{0,3}|E[0-9]{3}\.[0-9]?"
)


def code_systems(code: str) -> tuple[CodeSystem, ...]:
    """The systems whose form `code` fits: none, one, or both (`V` and two to four digits)."""
    found: list[CodeSystem] = []
    if ICD9_CODE.fullmatch(code):
        found.append("ICD-9-CM")
    if ICD10_CODE.fullmatch(code):
        found.append("ICD-10-CM")
    return tuple(found)


def infer_code_system(code: str, stated: str | None, service_days: Iterable[dt.date]) -> CodeSystem | None:
    """The code's system, or None when it cannot be told (the case validator reports why)."""
    fits = code_systems(code)
    if stated is not None:
        return next((f for f in fits if f == stated), None)
    if len(fits) == 1:
        return fits[0]
    if not fits:
        return None
    eras = {day >= ICD10_START for day in service_days}
    if len(eras) != 1:
        return None
    return "ICD-10-CM" if eras.pop() else "ICD-9-CM"


# ---------------------------------------------------------------------------------- words


_NON_WORD = re.compile(r"[^0-9a-z]+")


def _fold(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


@functools.lru_cache(maxsize=4096)
def tokens(text: str) -> frozenset[str]:
    """The words of `text`, casefolded, split at anything but letters and digits, plural `s` folded.
    Cached: row phrases repeat on every request, and a description on every row it is tried against."""
    return frozenset(_fold(w) for w in _NON_WORD.split(text.casefold()) if w)


def phrase_matches(phrase: str, text: str) -> bool:
    """Every word of `phrase` occurs among the words of `text` (order and other words do not matter)."""
    want = tokens(phrase)
    return bool(want) and want <= tokens(text)


# ---------------------------------------------------------------------------------- rows


def match_rows(
    rows: tuple[ConditionRow, ...], case: Case, request: Request, unnamed: UnnamedCondition | None = None
) -> tuple[ConditionMatch, ...]:
    """The distinct rows the diagnoses match, in table order, each with its strongest match: by code
    before by words, then the smallest (code, words, description), so the order of the case's diagnoses
    never changes the answer. `unnamed`: the table's reading of diagnoses that name no condition."""
    region = tokens(request.body_region) if request.body_region else None
    usable = _usable(rows, region)
    found: dict[str, ConditionMatch] = {}
    for diagnosis in case.diagnoses:
        matches = _by_code(usable, diagnosis) if diagnosis.code else []
        if not matches:
            matches = _by_words(usable, diagnosis, region)
        if not matches:
            matches = _by_general_words(usable, diagnosis)
        for m in matches:
            held = found.get(m.row.id)
            if held is None or _strength(m) < _strength(held):
                found[m.row.id] = m
    named = any(not m.general for m in found.values())
    if not named and request.postsurgical_procedure:
        # no diagnosis names a row by code or by the row's own words: the operation may name the condition
        by_procedure = _by_procedure_words(usable, request.postsurgical_procedure, region)
        if by_procedure:
            found = {m.row.id: m for m in by_procedure}
    if not found and unnamed is not None:
        # the request's body region, or, where it gives none, the region the diagnoses' own words name
        body = region if region is not None else frozenset().union(*(tokens(d.description) for d in case.diagnoses))
        found = {m.row.id: m for m in _by_region(usable, case, body, unnamed)}
    order = {r.id: i for i, r in enumerate(rows)}
    return tuple(sorted(found.values(), key=lambda m: order[m.row.id]))


def _strength(m: ConditionMatch) -> tuple[int, str, str]:
    rank = {"words": 1, "procedure_words": 2, "general_words": 3, "region": 4}[m.phrase_kind]
    return (0 if m.matched_by == "code" else rank, m.diagnosis, m.description)


def _by_code(rows: Usable, diagnosis: Diagnosis) -> list[ConditionMatch]:
    code = diagnosis.code or ""
    system = diagnosis.code_system
    out = []
    for row, _ in rows:
        prefixes = row.icd9 if system == "ICD-9-CM" else row.icd10 if system == "ICD-10-CM" else ()
        if any(code.startswith(p) for p in prefixes):
            out.append(ConditionMatch(row, "code", code, diagnosis.description, system))
    return out


def names_region(regions: tuple[str, ...], body_region: frozenset[str]) -> bool:
    """The request's body region (its words) names one of `regions`: every word of it is among them."""
    return any(tokens(r) and tokens(r) <= body_region for r in regions)


Phrase = tuple[str, frozenset[str]]  # a phrase as written and its words


@dataclass(frozen=True, slots=True)
class _RowPhrases:
    """A row's phrases with their words, worked out once per row (every request asks again)."""

    regions: tuple[frozenset[str], ...]
    words: tuple[Phrase, ...]
    all_words: tuple[Phrase, ...]  # `words`, then `words_in_region`
    general_words: tuple[Phrase, ...]
    procedure_words: tuple[Phrase, ...]

    def in_region(self, body_region: frozenset[str]) -> bool:
        return any(r and r <= body_region for r in self.regions)


# by id(row), with the row itself, so that an id is never taken for a later row's; bounded, since each reload
# of a policy set brings new rows (a full cache is emptied and fills again)
_ROW_PHRASES: dict[int, tuple[ConditionRow, _RowPhrases]] = {}
_ROW_PHRASES_MAX = 4096


def _phrases(row: ConditionRow) -> _RowPhrases:
    held = _ROW_PHRASES.get(id(row))
    if held is not None and held[0] is row:
        return held[1]

    def each(phrases: tuple[str, ...]) -> tuple[Phrase, ...]:
        return tuple((p, tokens(p)) for p in phrases)

    made = _RowPhrases(
        tuple(tokens(r) for r in row.regions),
        each(row.words),
        each(row.all_words),
        each(row.general_words),
        each(row.procedure_words),
    )
    if len(_ROW_PHRASES) >= _ROW_PHRASES_MAX:
        _ROW_PHRASES.clear()
    _ROW_PHRASES[id(row)] = (row, made)
    return made


# by (id(rows), body region), with the rows themselves: the rows a body region keeps (bounded as above)
Usable = tuple[tuple[ConditionRow, _RowPhrases], ...]  # rows a request can match, each with its phrases
_USABLE: dict[tuple[int, frozenset[str] | None], tuple[tuple[ConditionRow, ...], Usable]] = {}


def _usable(rows: tuple[ConditionRow, ...], region: frozenset[str] | None) -> Usable:
    """The rows a request of `region` can match: those without `regions`, or with one the region names."""
    held = _USABLE.get((id(rows), region))
    if held is not None and held[0] is rows:
        return held[1]
    phrased = [(r, _phrases(r)) for r in rows]
    usable = tuple((r, ph) for r, ph in phrased if not r.regions or region is None or ph.in_region(region))
    if len(_USABLE) >= _ROW_PHRASES_MAX:
        _USABLE.clear()
    _USABLE[(id(rows), region)] = (rows, usable)
    return usable


def _by_words(rows: Usable, diagnosis: Diagnosis, region: frozenset[str] | None) -> list[ConditionMatch]:
    return _by_phrases(
        rows,
        diagnosis.description,
        lambda ph: ph.all_words if region is not None and ph.in_region(region) else ph.words,
        "words",
    )


def _by_general_words(rows: Usable, diagnosis: Diagnosis) -> list[ConditionMatch]:
    return _by_phrases(rows, diagnosis.description, lambda ph: ph.general_words, "general_words")


def _by_procedure_words(rows: Usable, procedure: str, region: frozenset[str] | None) -> list[ConditionMatch]:
    """The rows whose `procedure_words` occur in the procedure. A request without a body region is narrowed
    by the region the procedure's own words name ("cervical fusion" keeps the neck's rows, not the low
    back's), when they name the region of any row matched."""
    found = _by_phrases(rows, procedure, lambda ph: ph.procedure_words, "procedure_words")
    if region is None and found:
        said = tokens(procedure)
        named = [m for m in found if names_region(m.row.regions, said)]
        if named:
            return named
    return found


def names_no_condition(description: str, regions: tuple[str, ...], unnamed: UnnamedCondition) -> bool:
    """Every word of `description` is one of the table's words for naming no condition or a word of
    `regions` ("compensable lumbar injury" for the low back's group)."""
    allowed = frozenset().union(*(tokens(w) for w in (*unnamed.words, *regions)))
    return tokens(description) <= allowed


def names_no_procedure(request: Request, row: ConditionRow, unnamed: UnnamedProcedure) -> bool:
    """The post-surgical request names the surgery but none of `row`'s post-surgical entries: every word of
    its procedure is one of the table's words for naming no procedure, a word of the request's body region
    or a word of the row's own phrases and regions ("right shoulder surgery (rotator cuff protocol)")."""
    if not request.postsurgical or not unnamed.procedures_for(row.id):
        return False
    said = (
        *unnamed.words,
        *unnamed.words_for(row.id),
        *row.regions,
        *row.all_words,
        *row.general_words,
        request.body_region or "",
    )
    allowed = frozenset().union(*(tokens(w) for w in said))
    return tokens(request.postsurgical_procedure or "") <= allowed


def _by_region(
    rows: Usable, case: Case, body_region: frozenset[str], unnamed: UnnamedCondition
) -> list[ConditionMatch]:
    """The rows read for the request's body region when no diagnosis names a condition: none has a code,
    and every description names only the injured part (or the case gives no diagnosis). A body region
    that names regions of several groups ("neck and low back") reads the rows of each."""
    groups = [g for g in unnamed.regions if names_region(g.regions, body_region)]
    if not groups or any(d.code for d in case.diagnoses):
        return []
    regions = tuple(r for g in groups for r in g.regions)
    if not all(names_no_condition(d.description, regions, unnamed) for d in case.diagnoses):
        return []
    named = ", ".join(r for r in regions if tokens(r) <= body_region)  # the pack's words for the region
    wanted = {row for g in groups for row in g.rows}
    described = "; ".join(d.description for d in case.diagnoses)
    return [ConditionMatch(r, "region", named, described, phrase_kind="region") for r, _ in rows if r.id in wanted]


def _by_phrases(
    rows: Usable,
    text: str,
    phrases_of: Callable[[_RowPhrases], tuple[Phrase, ...]],
    kind: Literal["words", "general_words", "procedure_words"],
) -> list[ConditionMatch]:
    """The rows one of whose phrases (`phrases_of`, the first that matches) occurs in `text`."""
    words = tokens(text)
    out = []
    for row, ph in rows:
        phrase = next((p for p, want in phrases_of(ph) if want and want <= words), None)
        if phrase is not None:
            out.append(ConditionMatch(row, "words", phrase, text, phrase_kind=kind))
    return out


__all__ = [
    "ICD10_START",
    "ConditionMatch",
    "code_systems",
    "infer_code_system",
    "match_rows",
    "names_no_condition",
    "names_no_procedure",
    "names_region",
    "phrase_matches",
    "tokens",
]

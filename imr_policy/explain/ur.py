"""Words for a UR decision's timeliness (imr_policy/engine/timeliness.py decides; this module only writes)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from imr_policy.model.values import ItemDetermination, Span, Timeliness, evolve

_KIND = {"business_days": "business days", "calendar_days": "days", "hours": "hours"}


def _day(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M %Z").strip()
    if isinstance(value, dt.date):
        return f"{value.strftime('%A')} {value.isoformat()}"
    return str(value)


def _span(span: Span) -> str:
    if span.exact:
        return _day(span.lo)
    if span.hi is None:
        return f"{_day(span.lo)} at the earliest"
    return f"between {_day(span.lo)} and {_day(span.hi)}"


def sentence(t: Timeliness) -> str:
    """One sentence (or two) for the rationale."""
    if t.procedure is None or t.deadline is None:
        return "Whether the UR decision was timely cannot be decided: " + "; ".join(t.reasons) + "."
    basis = f"{t.rule} ({t.procedure})"
    received = f"the request counts as received on {_span(t.received)}, " if t.received is not None else ""
    extension = " with the extension for more information" if t.extension else ""
    counted = f", {len(t.days_counted)} business days counted" if t.days_counted else ""
    skipped = " (skipping " + ", ".join(d.isoformat() for d in t.skipped) + ")" if t.skipped and t.days_counted else ""
    deadline = f"{received}so the deadline{extension} was {_span(t.deadline)}{counted}{skipped}"
    if t.status == "timely":
        return f"The UR decision of {t.decided} was timely under {basis}: {deadline}."
    if t.status == "untimely":
        return (
            f"The UR decision of {t.decided} was untimely under {basis}: {deadline}. "
            f"{_capital(t.consequence or '')}; the determination above is what the guidelines say and is not "
            "changed by it."
        )
    why = "; ".join(t.reasons)
    needs = f"; to decide it, the records would need {', '.join(t.needs)}" if t.needs else ""
    decided = f"of {t.decided} " if t.decided else ""
    return (
        f"Whether the UR decision {decided}was timely under {basis} cannot be decided: {deadline}"
        + (f"; {why}" if why else "")
        + f"{needs}."
    )


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def worded(item: ItemDetermination) -> ItemDetermination:
    """The item with its UR timeliness put in words (nothing else changes)."""
    if item.ur_timeliness is None:
        return item
    return evolve(item, ur_timeliness=dataclasses.replace(item.ur_timeliness, rationale=sentence(item.ur_timeliness)))

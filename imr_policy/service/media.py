"""Content negotiation by `Accept` (RFC 9110, section 12.5.1), for the endpoints that answer in several media types.

`negotiate(accept, offered)` picks, of the media types the endpoint `offered` (in the order it prefers
them), the one the request accepts with the highest weight: the most specific range that matches a type
gives its weight (`text/html` before `text/*` before `*/*`), a weight of 0 refuses it, and ties go to the
endpoint's order. No `Accept` (or an empty one) accepts anything: the first offered type. Ranges that
cannot be read (no `/`, a weight that is not a number from 0 to 1) are skipped, as RFC 9110 allows, and
only the first `MAX_RANGES` are read, so a hostile header costs a bounded amount of work.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

MAX_RANGES = 64
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_WEIGHT = re.compile(r"0(\.\d{0,3})?|1(\.0{0,3})?")


def _ranges(accept: str) -> list[tuple[str, str, float]]:
    """The readable media ranges of an `Accept` value: (type, subtype, weight), lower case."""
    out = []
    for part in accept.split(",")[:MAX_RANGES]:
        media, *params = part.split(";")
        kind, slash, sub = media.strip().lower().partition("/")
        if not slash or not _TOKEN.fullmatch(kind) or not _TOKEN.fullmatch(sub) or (kind == "*" and sub != "*"):
            continue
        weight: float | None = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                value = value.strip()
                weight = float(value) if _WEIGHT.fullmatch(value) else None
        if weight is not None:
            out.append((kind, sub, weight))
    return out


def _weight(media: str, ranges: list[tuple[str, str, float]]) -> float:
    """The weight the most specific matching range gives `media` (0 when none matches)."""
    kind, _, sub = media.partition("/")
    best, weight = -1, 0.0
    for rkind, rsub, q in ranges:
        specificity = 2 if (rkind, rsub) == (kind, sub) else 1 if (rkind == kind and rsub == "*") else 0
        if (specificity == 0 and (rkind, rsub) != ("*", "*")) or specificity < best:
            continue
        if specificity > best:
            best, weight = specificity, q
        else:  # as specific as the best so far: the higher weight (a repeated range)
            weight = max(weight, q)
    return weight


def negotiate(accept: str | None, offered: Sequence[str]) -> str | None:
    """The media type of `offered` to answer in, or None when the request accepts none of them (a 406)."""
    if accept is None or not accept.strip():
        return offered[0]
    ranges = _ranges(accept)
    best, chosen = 0.0, None
    for media in offered:
        weight = _weight(media, ranges)
        if weight > best:
            best, chosen = weight, media
    return chosen


def shown(accept: str) -> str:
    """`accept` as it may appear in a problem's detail: printable ASCII, at most 100 characters."""
    text = accept.encode("ascii", "backslashreplace").decode()
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= 100 else text[:100] + "..."

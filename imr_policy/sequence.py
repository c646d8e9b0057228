"""The evidence search sequence per jurisdiction: which guideline tiers are consulted, in what order.

California (8 CCR 9792.21.1(d); LC 4610.5(c)(2)): the MTUS first, presumed correct (LC 4604.5);
other guidelines only where the MTUS does not address the service, and otherwise as supporting
evidence when the MTUS does not support the full request. Texas: ODG is the adopted guideline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Step:
    tier: Literal["mtus", "non_mtus"]
    families: frozenset[str] | None  # None: every family of the tier
    role: Literal["decide", "fallback"]
    label: str
    required: bool  # no edition of this step in force on the date of service: pend, never skip to the next


@dataclass(frozen=True, slots=True)
class Profile:
    jurisdiction: str
    steps: tuple[Step, ...]
    authority: str


PROFILES: dict[str, Profile] = {
    "CA": Profile(
        "CA",
        (
            Step("mtus", None, "decide", "MTUS", required=True),
            Step("non_mtus", None, "fallback", "non-MTUS guidelines", required=False),
        ),
        "8 CCR 9792.21.1(d); Labor Code 4610.5(c)(2); Labor Code 4604.5 (MTUS presumed correct)",
    ),
    "TX": Profile(
        "TX",
        (Step("non_mtus", frozenset({"ODG"}), "decide", "ODG", required=True),),
        "Texas adopted ODG on May 1, 2007; care within ODG is presumed reasonable (https://www.texmed.org/Template.aspx?id=5811)",
    ),
}

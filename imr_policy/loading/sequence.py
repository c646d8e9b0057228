"""The evidence search sequence per jurisdiction, loaded from `policies/jurisdictions/<code>.yaml`.

California (8 CCR 9792.21.1(d); Labor Code 4610.5(c)(2)): statutes cap every guideline; the MTUS
first, presumed correct (Labor Code 4604.5); other guidelines only where the MTUS is cited as not
addressing the service, and otherwise as supporting evidence. Texas: ODG is the adopted guideline.
A third jurisdiction is a new profile file, not new code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from imr_policy.loading.schemacheck import float_diagnostics, schema_diagnostics
from imr_policy.loading.yamlsrc import load_text
from imr_policy.model.diagnostics import Diagnostic


@dataclass(frozen=True, slots=True)
class Step:
    tier: Literal["statute", "mtus", "non_mtus"]
    families: frozenset[str] | None  # None: every family of the tier
    role: Literal["cap", "decide", "fallback"]
    label: str
    required: bool  # no edition of this step in force on the date of service: pend, never skip to the next


@dataclass(frozen=True, slots=True)
class Profile:
    jurisdiction: str
    title: str
    steps: tuple[Step, ...]
    authority: str
    file: str
    sha256: str
    # what a rationale says about this jurisdiction's law, by situation (explain/rationale.py's _NEUTRAL lists the keys)
    sentences: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def first_decider(self) -> Step:
        return next(s for s in self.steps if s.role == "decide")


def check_profile_text(text: str, *, file: str, sha256: str) -> tuple[Profile | None, list[Diagnostic]]:
    """Validate one jurisdiction profile; the Profile only when it has no errors."""
    loaded = load_text(text, file=file, code_prefix="policy")
    if loaded.data is None or loaded.diagnostics:
        return None, list(loaded.diagnostics)
    problems = schema_diagnostics(
        "jurisdiction", loaded.data, prefix="policy.schema", file=file, source_map=loaded.source_map
    )
    problems += float_diagnostics(loaded.data, prefix="policy.schema", file=file, source_map=loaded.source_map)
    if problems:
        return None, problems
    data: dict[str, Any] = loaded.data
    steps = tuple(
        Step(
            tier=s["tier"],
            families=frozenset(s["families"]) if "families" in s else None,
            role=s["role"],
            label=s["label"],
            required=s.get("required", False),
        )
        for s in data["sequence"]
    )
    if not any(s.role == "decide" for s in steps):
        where = loaded.source_map.locate("$.sequence")
        return None, [
            Diagnostic(
                code="policy.profile-without-decider",
                message="the sequence has no step with role `decide`",
                path="$.sequence",
                file=file,
                line=where[0] if where else None,
                column=where[1] if where else None,
                hint="add the tier whose guidelines decide, e.g. `{tier: mtus, role: decide, label: MTUS}`",
            )
        ]
    profile = Profile(
        data["jurisdiction"], data["title"], steps, data["authority"], file, sha256, dict(data.get("sentences", {}))
    )
    return profile, []

"""The exception tree of imr_policy.

    ImrPolicyError                 root: catch this to catch everything the package raises on purpose
    ├── PolicyError                rule files are invalid; carries every Diagnostic found, never just the first
    ├── CaseError                  a case is invalid; carries every Diagnostic found; no determination is made
    └── EngineError                the rule engine failed or disagreed with itself; the case is not decided

An error is never an approval: callers that catch these must not certify anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from imr_policy.model.diagnostics import Diagnostic

__all__ = ["CaseError", "EngineError", "ImrPolicyError", "PolicyError"]


class ImrPolicyError(Exception):
    """Root of every error imr_policy raises on purpose."""


class _DiagnosticsError(ImrPolicyError):
    def __init__(self, summary: str, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        lines = [summary, *(d.render() for d in self.diagnostics)]
        super().__init__("\n".join(lines))


class PolicyError(_DiagnosticsError):
    """Rule files failed validation; `diagnostics` holds every problem found."""


class CaseError(_DiagnosticsError):
    """A case failed validation; `diagnostics` holds every problem found."""


class EngineError(ImrPolicyError):
    """The engine could not decide reliably (a durable_rules failure or a self-check mismatch)."""

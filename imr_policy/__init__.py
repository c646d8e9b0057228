"""imr-policy: declarative, versioned, testable medical-necessity policies for UR and IMR.

import imr_policy
engine = imr_policy.load()                 # the shipped rule packs; load("path/to/policies") for others
determination = engine.evaluate(case)      # a dict per the case contract; raises CaseError when invalid
determination.to_dict()                    # valid against schemas/decision.schema.json
imr_policy.write_letter(engine, case)      # the UR determination letter: every required element, or why missing
"""

from imr_policy.authoring.why import Explanation, explain_case
from imr_policy.compliance.letter import Letter
from imr_policy.compliance.letter import write as write_letter
from imr_policy.evaluate import ENGINE_VERSION, Engine, load
from imr_policy.loading.case import case_diagnostics, parse_case_text, validate_case
from imr_policy.loading.validate import LoadResult, load_editions
from imr_policy.model.diagnostics import Diagnostic, Severity
from imr_policy.model.errors import CaseError, EngineError, ImrPolicyError, PolicyError
from imr_policy.model.values import BasisEntry, Case, Determination, ItemDetermination, SearchStep, TraceEntry

__version__ = ENGINE_VERSION

__all__ = [
    "BasisEntry",
    "Case",
    "CaseError",
    "Determination",
    "Diagnostic",
    "Engine",
    "EngineError",
    "Explanation",
    "ImrPolicyError",
    "ItemDetermination",
    "Letter",
    "LoadResult",
    "PolicyError",
    "SearchStep",
    "Severity",
    "TraceEntry",
    "__version__",
    "case_diagnostics",
    "explain_case",
    "load",
    "load_editions",
    "parse_case_text",
    "validate_case",
    "write_letter",
]

"""Where the shipped rule packs and schemas are.

In a wheel they live in `imr_policy/_data/` (see pyproject.toml); in a source checkout or an
editable install they are the repository's top-level `policies/` and `schemas/`.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from imr_policy.model.diagnostics import DOCS_URL

_PACKAGE = Path(__file__).resolve().parent.parent  # imr_policy/, this file being imr_policy/loading/resources.py


def _data_dir(name: str) -> Path:
    installed = _PACKAGE / "_data" / name
    if installed.is_dir():
        return installed
    checkout = _PACKAGE.parent / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"imr_policy data directory `{name}` is missing from the installation")


def policies_dir() -> Path:
    """The rule packs shipped with the package."""
    return _data_dir("policies")


def checkout_policies(start: Path | None = None) -> Path | None:
    """The `policies/` directory of the checkout the working directory is in, or None outside one.

    A checkout is the nearest of the working directory and its parents that holds a `policies/` directory
    with at least one rule pack (`policies/<guideline>/<edition>.yaml`), as Cerbos and OPA read the
    working directory: an author's edit is what the verbs read, never the installed copy. Bounded: at most
    64 levels up, and one directory listing per level."""
    here = (start or Path.cwd()).resolve()
    for level, directory in enumerate((here, *here.parents)):
        if level >= 64:
            break
        candidate = directory / "policies"
        try:
            if candidate.is_dir() and next(candidate.glob("*/*.yaml"), None) is not None:
                return candidate
        except OSError:
            continue
    return None


def schemas_dir() -> Path:
    return _data_dir("schemas")


def diagnostics_doc() -> Path:
    """docs/diagnostics.md: every diagnostic code, what it means, an example and the fix (shipped with the
    package as `_data/docs/diagnostics.md`, so `imr-policy diagnostic CODE` works from a wheel)."""
    return _data_dir("docs") / Path(DOCS_URL).name


def examples_dir() -> Path:
    """The example cases (`cases/*.yaml`), shipped with the package as in the checkout."""
    return _data_dir("examples")


@cache
def schema(name: str) -> dict[str, Any]:
    """One of `policy`, `case`, `decision`."""
    with (schemas_dir() / f"{name}.schema.json").open(encoding="utf-8") as fh:
        loaded: dict[str, Any] = json.load(fh)
    return loaded

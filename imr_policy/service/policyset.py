"""A private copy of the rule files for one generation of workers.

Workers load the policy set from this snapshot, never from the directory the operator edits, so a
worker started later to replace a crashed one loads exactly the same rules as its siblings, even if
the files have been edited since (edits take effect on reload, and only after they validate).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from imr_policy.evaluate import Engine, _policy_set_id, engine_from, with_shipped_profiles
from imr_policy.loading.resources import policies_dir
from imr_policy.loading.validate import LoadResult, discover, load_editions

Backend = Literal["durable", "reference"]


@dataclass(frozen=True, slots=True)
class Snapshot:
    root: Path
    policy_set_id: str  # what `imr_policy.load(source)` would call the set


def take_snapshot(source: Path | None, into: Path) -> Snapshot:
    """Copy the rule files under `source` (default: the shipped packs) into the new directory `into`.

    Only the files the loader reads are copied, each at its path relative to `source`, so file names
    in diagnostics and the content hash are those `imr_policy.load(source)` gives."""
    root = source if source is not None else policies_dir()
    base = root if root.is_dir() else root.parent
    into.mkdir(parents=True)
    for file in discover([root]):
        target = into / file.relative_to(base)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, target)
    return Snapshot(into, _policy_set_id(source, root))


def validate_snapshot(snapshot: Snapshot) -> LoadResult:
    """Every problem in the snapshot's rule files (what `imr_policy.load` checks before compiling)."""
    return with_shipped_profiles(load_editions([snapshot.root], display_root=snapshot.root))


def engine_for(snapshot: Snapshot, backend: Backend) -> Engine:
    """Load, validate and compile the snapshot; raises PolicyError."""
    return engine_from(validate_snapshot(snapshot), policy_set_id=snapshot.policy_set_id, engine=backend)


def remove(snapshot: Snapshot) -> None:
    shutil.rmtree(snapshot.root, ignore_errors=True)

"""`imr-policy migrate`: rewrite format-1 rule packs as format 2, proved to decide the same.

Each file is rewritten by imr_policy.loading.packformat.migrate_text (comments kept), then both texts are
validated and compared with imr_policy.compliance.diff: the migration stands only when the new file is valid and
`diff` finds no difference at all between the two editions (not a rule, a limit, an order that decides,
a hit policy or a word). Otherwise the file is left as it is and the reason is reported.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from imr_policy.compliance.diff import change_summary, diff_editions
from imr_policy.loading.packformat import MigrateError, migrate_text
from imr_policy.loading.procedure import is_procedure
from imr_policy.loading.validate import check_text, discover, is_profile

Status = Literal["migrated", "already", "not-a-pack", "refused"]


@dataclass(frozen=True, slots=True)
class Migration:
    file: str
    status: Status
    text: str = ""  # the format-2 text (migrated only)
    reason: str = ""  # why a file was refused or skipped

    def unified_diff(self, old: str) -> str:
        return "".join(
            difflib.unified_diff(
                old.splitlines(keepends=True), self.text.splitlines(keepends=True), self.file, f"{self.file} (format 2)"
            )
        )


def migrate_file(path: Path) -> Migration:
    """The format-2 text of one rule file, checked to decide exactly as the file does."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return Migration(file, "refused", reason=f"cannot read the file: {exc.__class__.__name__}")
    if is_profile(path, text) or is_procedure(path.parent.name, text):
        return Migration(file, "not-a-pack", reason="a jurisdiction profile or a UR procedure pack, not an edition")
    before, _, _ = check_text(text, file=file)
    if before is None:
        return Migration(file, "refused", reason="the file is not valid: run `imr-policy validate` on it first")
    if before.format == 2:
        return Migration(file, "already")
    try:
        new_text = migrate_text(text)
    except MigrateError as exc:
        return Migration(file, "refused", reason=str(exc))
    after, new_problems, _ = check_text(new_text, file=file)
    if after is None:
        first = next((d.message for d in new_problems), "no edition")
        return Migration(file, "refused", reason=f"the rewritten file would not be valid ({first})")
    changes = diff_editions(before, after).changes
    if changes:
        listed = "; ".join(change_summary(c) for c in changes[:3])
        return Migration(file, "refused", reason=f"the rewritten file would decide differently: {listed}")
    return Migration(file, "migrated", text=new_text)


def migrate_paths(paths: list[Path]) -> tuple[Migration, ...]:
    """Every rule file under `paths` (policy test files and jurisdiction profiles are not packs)."""
    return tuple(migrate_file(p) for p in discover(paths))


__all__ = ["Migration", "migrate_file", "migrate_paths"]

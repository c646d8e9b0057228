"""The two sides of a policy diff: where each comes from, and the policy set an impact run evaluates.

A side is named the way a compliance user thinks of it:

* a rule file (`policies/odg-mental-illness-stress/2015-03.yaml`) or a directory of packs (`policies/`);
* an edition of the shipped packs, `<guideline>@<edition>` (`odg-mental-illness-stress@2015-03`);
* a git revision of the policies, `git:REV[:PATH]` (PATH relative to the repository's top level,
  default `policies`), read with `git archive` into a temporary directory.

For an impact run every side must be a whole policy set (a California case needs an MTUS edition to
be decided at all). A directory or a git revision is one. A single edition (a rule file or an edition
id) stands in for its guideline in the shipped packs: the shipped editions of that guideline are left
out, and the edition is put in force for the whole period that the editions of the guideline on
either side cover, so that the two sides differ only in the guideline's rules, never in whether an
edition is in force on a date. `PackSource.note` says so in the report.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import re
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from imr_policy.compliance.diff import PolicySet
from imr_policy.evaluate import Engine, load
from imr_policy.loading.resources import checkout_policies, policies_dir
from imr_policy.loading.validate import LoadResult, discover, load_editions
from imr_policy.model.diagnostics import did_you_mean
from imr_policy.model.errors import EngineError, ImrPolicyError, PolicyError
from imr_policy.model.values import Edition

SideKind = Literal["file", "directory", "edition", "git"]
_EDITION_ID = re.compile(r"(?P<guideline>[A-Za-z0-9][A-Za-z0-9._-]*)@(?P<edition>[A-Za-z0-9][A-Za-z0-9._-]*)")
DEFAULT_GIT_PATH = "policies"


class SideError(ImrPolicyError):
    """A side could not be resolved (no such path, unknown edition, git failure): a usage error."""


@dataclass(frozen=True, slots=True)
class Side:
    spec: str  # as the user wrote it
    kind: SideKind
    root: Path  # a rule file or a directory; for git, inside a temporary directory
    label: str
    result: LoadResult  # validated: `resolve` raises PolicyError otherwise

    @property
    def policy_set(self) -> PolicySet:
        # files are named relative to the directory (or a file's own directory), as the user named it
        where = "" if self.kind == "git" else str(self.root if self.root.is_dir() else self.root.parent)
        return PolicySet(self.result.editions, self.result.profiles, self.result.procedures, where)

    @property
    def single_edition(self) -> Edition | None:
        """The edition, for a side that is one rule file or one edition id."""
        if self.root.is_file() and len(self.result.editions) == 1:
            return self.result.editions[0]
        return None


@dataclass(frozen=True, slots=True)
class PackSource:
    """A policy set as texts, so that a worker process or a Dask worker on another machine can load it.

    `files` empty means the packs shipped with the package. `name` is the directory (or, with
    `single_file`, the file) name the texts are written under, so `imr_policy.load` gives the policy set
    the same id as it would the original path.
    """

    label: str
    name: str
    files: tuple[tuple[str, str], ...]
    single_file: bool = False
    note: str = ""
    content_hash: str = ""  # when set, a loaded engine must have exactly this content hash


def load_pack(pack: PackSource, *, engine: Literal["durable", "reference"] = "durable") -> Engine:
    """Load a PackSource with `imr_policy.load`, as the original path would be loaded.

    The texts are written to a temporary directory that is removed as soon as the engine is built (the
    engine keeps nothing but the validated editions). Raises PolicyError for invalid rule files and
    EngineError when the result is not the policy set the caller meant (e.g. a Dask worker with
    another version of the shipped packs).
    """
    if not pack.files:
        loaded = load(None, engine=engine)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            base = Path(tmp) if pack.single_file else Path(tmp) / pack.name
            for name, text in pack.files:
                path = base / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
            loaded = load(base / pack.name if pack.single_file else base, engine=engine)
    if pack.content_hash and loaded.policy_set.content_hash != pack.content_hash:
        raise EngineError(
            f"the policy set `{pack.label}` loaded here has content hash `{loaded.policy_set.content_hash}`, "
            f"not `{pack.content_hash}`; install the same imr-policy and rule packs on every worker"
        )
    return loaded


def pinned(pack: PackSource) -> PackSource:
    """The pack with its content hash filled in (validating it on the way): what workers must reproduce."""
    return dataclasses.replace(pack, content_hash=load_pack(pack, engine="reference").policy_set.content_hash)


def resolve(spec: str, *, scratch: Path, repo: Path | None = None) -> Side:
    """Resolve one side. `scratch` is a directory the caller removes afterwards (git sides are unpacked there).

    Raises SideError for a usage problem and PolicyError (with every diagnostic) for invalid rule files.
    """
    if spec.startswith("git:"):
        return _git_side(spec, scratch=scratch, repo=repo)
    path = Path(spec)
    if path.exists():
        kind: SideKind = "directory" if path.is_dir() else "file"
        return _side(spec, kind, path, spec)
    match = _EDITION_ID.fullmatch(spec)
    if match:
        return _edition_side(spec, match["guideline"], match["edition"])
    raise SideError(
        f"`{spec}` is neither a rule file, a directory, an edition id (`<guideline>@<edition>`) nor a git "
        "revision (`git:REV[:PATH]`)"
    )


def _side(spec: str, kind: SideKind, root: Path, label: str) -> Side:
    result = load_editions([root], display_root=root if root.is_dir() else root.parent)
    if not result.ok:
        raise PolicyError(f"the rule files of `{spec}` are not valid", result.diagnostics)
    return Side(spec, kind, root, label, result)


def base_root() -> Path:
    """The packs an edition id names and a single-edition side stands in: the checkout's `policies/` (the
    working directory or a parent), as every verb reads, else the installed packs."""
    return checkout_policies() or policies_dir()


def shipped() -> LoadResult:
    root = base_root()
    return load_editions([root], display_root=root)


def _edition_side(spec: str, guideline: str, edition: str) -> Side:
    base = shipped()
    keys = {e.key: e for e in base.editions}
    found = keys.get(f"{guideline}@{edition}")
    if found is None:
        hint = did_you_mean(spec, keys) or "shipped editions: " + ", ".join(f"`{k}`" for k in sorted(keys))
        raise SideError(f"no shipped edition `{spec}`; {hint}")
    return _side(spec, "edition", base_root() / found.file, spec)


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError:
        raise SideError("git is not installed, so `git:` sides cannot be read") from None


def _git_side(spec: str, *, scratch: Path, repo: Path | None) -> Side:
    rev, _, inner = spec.removeprefix("git:").partition(":")
    inner = inner.strip("/") or DEFAULT_GIT_PATH
    if not rev:
        raise SideError(f"`{spec}` names no revision; write `git:REV[:PATH]`, e.g. `git:HEAD~1:policies`")
    where = (repo or Path.cwd()).resolve()
    top = _git(["rev-parse", "--show-toplevel"], where)
    if top.returncode != 0:
        raise SideError(f"`{where}` is not inside a git repository, so `{spec}` cannot be read")
    toplevel = Path(top.stdout.decode().strip())
    commit = _git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], toplevel)
    if commit.returncode != 0:
        raise SideError(f"`{rev}` is not a revision of the repository at `{toplevel}`")
    sha = commit.stdout.decode().strip()
    archive = _git(["archive", "--format=tar", sha, "--", inner], toplevel)
    if archive.returncode != 0:
        raise SideError(f"`{inner}` does not exist at `{rev}` ({sha[:10]}) in `{toplevel}`")
    dest = scratch / f"git-{sha[:12]}-{len(list(scratch.iterdir()))}"
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")
    root = dest / inner
    kind: SideKind = "directory" if root.is_dir() else "file"
    side = _side(spec, kind, root, f"{spec} ({sha[:10]})")
    return Side(spec, "git", root, side.label, side.result)


# ---------------------------------------------------------------------------------------------- impact


def pack_sources(old: Side, new: Side) -> tuple[PackSource, PackSource]:
    """The policy sets an impact run evaluates for each side (see the module docstring)."""
    base = shipped()
    window = _window(old, new, base)
    return _pack(old, base, window), _pack(new, base, window)


def _window(old: Side, new: Side, base: LoadResult) -> dict[str, tuple[dt.date, dt.date | None]]:
    """Per guideline that a single-edition side stands in for: the union of the periods in force."""
    out: dict[str, tuple[dt.date, dt.date | None]] = {}
    singles = [e for e in (old.single_edition, new.single_edition) if e is not None]
    for single in singles:
        gid = single.guideline_id
        spans = [
            (e.effective_from, e.effective_to)
            for e in (*base.editions, *old.result.editions, *new.result.editions)
            if e.guideline_id == gid
        ]
        start = min(s for s, _ in spans)
        end = None if any(t is None for _, t in spans) else max(t for _, t in spans if t is not None)
        out[gid] = (start, end)
    return out


def _read_files(root: Path) -> tuple[tuple[str, str], ...]:
    base = root if root.is_dir() else root.parent
    return tuple((p.relative_to(base).as_posix(), p.read_text(encoding="utf-8")) for p in discover([root]))


def _pack(side: Side, base: LoadResult, window: dict[str, tuple[dt.date, dt.date | None]]) -> PackSource:
    single = side.single_edition
    if single is None:
        return PackSource(side.label, side.root.name or "policies", _read_files(side.root), side.root.is_file())
    gid = single.guideline_id
    start, end = window[gid]
    root = base_root()
    dropped = {e.file for e in base.editions if e.guideline_id == gid}
    files = [(name, text) for name, text in _read_files(root) if name not in dropped]
    text = side.root.read_text(encoding="utf-8")
    widened = (start, end) != (single.effective_from, single.effective_to)
    if widened:
        text = _with_window(text, start, end)
    files.append((f"{gid}/{single.edition_id}.yaml", text))
    span = f"{start.isoformat()} to {end.isoformat() if end else 'open-ended'}"
    note = f"the shipped packs with `{single.key}` as the only edition of `{gid}`" + (
        f", in force from {span} (its own dates widened for this comparison)" if widened else ""
    )
    return PackSource(side.label, f"what-if-{single.key}", tuple(sorted(files)), False, note)


def _with_window(text: str, start: dt.date, end: dt.date | None) -> str:
    data: dict[str, Any] = yaml.safe_load(text)
    effective = data["edition"]["effective"]
    effective["from"] = start
    effective["to"] = end
    return "# yaml-language-server: $schema=../../schemas/policy.schema.json\n" + yaml.safe_dump(
        data, sort_keys=False, allow_unicode=True, width=100
    )


def pack_of(path: Path | None, label: str) -> PackSource:
    """The PackSource for `imr_policy.load(path)` (None: the shipped packs)."""
    if path is None:
        return PackSource(label, "", ())
    return PackSource(label, path.resolve().name, _read_files(path), path.is_file())


__all__ = ["PackSource", "Side", "SideError", "load_pack", "pack_of", "pack_sources", "pinned", "resolve"]

"""The pipeline's layers hold (import-linter contracts in pyproject.toml), every module has its place in
them, and the check is able to fail."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import imr_policy
from tests.conftest import ROOT

CONFIG = ROOT / "pyproject.toml"
# import-linter's own entry point (`lint-imports`), run with this interpreter
_RUN = (
    "import sys; from importlinter.cli import lint_imports; "
    "sys.exit(lint_imports(config_filename=sys.argv[1], no_cache=True, no_logo=True))"
)


def _lint(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _RUN, str(config)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )


def _layers() -> list[str]:
    data = tomllib.loads(CONFIG.read_text(encoding="utf-8"))
    [layers] = [c for c in data["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    return [m.strip() for layer in layers["layers"] for m in layer.replace("|", ":").split(":")]


def test_the_contracts_are_kept() -> None:
    done = _lint(CONFIG)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 kept, 0 broken" in done.stdout


def test_every_module_has_its_layer() -> None:
    modules = {m.name for m in pkgutil.iter_modules(imr_policy.__path__)}
    placed = _layers()
    assert len(placed) == len(set(placed)), "a module is placed twice"
    assert sorted(modules - set(placed)) == [], "place the new module in [tool.importlinter] (pyproject.toml)"
    assert sorted(set(placed) - modules) == []


def test_a_broken_layering_is_reported(tmp_path: Path) -> None:
    """The data model placed above the engine: import-linter must report the contract broken."""
    text = CONFIG.read_text(encoding="utf-8")
    broken = text.replace('    "evaluate",\n', '    "model",\n    "evaluate",\n', 1).replace(
        '    "language",\n    "model",\n]', '    "language",\n]', 1
    )
    assert broken != text
    config = tmp_path / "pyproject.toml"
    config.write_text(broken, encoding="utf-8")
    done = _lint(config)
    assert done.returncode == 1
    assert "BROKEN" in done.stdout


def test_the_documented_layers_are_the_checked_ones() -> None:
    """docs/architecture.md's table of layers names the modules of each layer of the import-linter contract."""
    import re
    import tomllib

    config = tomllib.loads(CONFIG.read_text(encoding="utf-8"))
    [layers] = [c["layers"] for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    doc = (CONFIG.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = [line for line in doc.splitlines() if line.startswith("| ") and "`" in line]
    documented = [set(re.findall(r"`([a-z_]+)/?`", row.split("|")[2])) for row in rows[: len(layers)]]
    for layer, named in zip(layers, documented, strict=True):
        assert {m.strip() for m in layer.split(":")} == named, (layer, named)

"""No function in imr_policy/ is longer than 80 lines (issue 10, item 4), but for the ones named below, each
with why it stays. The list can only shrink: a name that is no longer too long must leave it."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

MAX_LINES = 80

# "module path:qualified name" -> why it is still longer than MAX_LINES (none left)
ALLOWED: dict[str, str] = {}


def _lengths(root: Path = ROOT) -> dict[str, int]:
    """Every function and method of the package under `root`, with its length in lines (decorators included)."""
    found: dict[str, int] = {}
    for path in sorted((root / "imr_policy").rglob("*.py")):
        module = path.relative_to(root).as_posix()

        def walk(node: ast.AST, prefix: str, module: str = module) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    start = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                    assert child.end_lineno is not None
                    found[f"{module}:{prefix}{child.name}"] = child.end_lineno - start + 1
                    walk(child, f"{prefix}{child.name}.")
                elif isinstance(child, ast.ClassDef):
                    walk(child, f"{prefix}{child.name}.")

        walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), "")
    return found


def _too_long() -> dict[str, int]:
    return {name: n for name, n in _lengths().items() if n > MAX_LINES}


def test_no_function_is_too_long() -> None:
    long = {name: n for name, n in _too_long().items() if name not in ALLOWED}
    assert long == {}, f"split these functions into named helpers of at most {MAX_LINES} lines"


def test_the_allow_list_only_shrinks() -> None:
    lengths = _lengths()
    stale = sorted(name for name in ALLOWED if lengths.get(name, 0) <= MAX_LINES)
    assert stale == [], "these are short now (or gone): remove them from ALLOWED"


def test_the_check_is_able_to_fail(tmp_path: Path) -> None:
    """A method one line too long is found, by its module and qualified name."""
    body = "\n".join(f"        x{i} = {i}" for i in range(MAX_LINES))
    (tmp_path / "imr_policy").mkdir()
    (tmp_path / "imr_policy" / "m.py").write_text(f"class C:\n    def long(self):\n{body}\n", encoding="utf-8")
    assert _lengths(tmp_path) == {"imr_policy/m.py:C.long": MAX_LINES + 1}

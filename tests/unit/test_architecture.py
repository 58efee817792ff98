"""The controller's architecture, held by tests: what import-linter cannot see.

import-linter (``pyproject.toml``) keeps the parts' layers and who may import whom; these
tests keep the rest of what the layout promises: every exception in the one hierarchy, no
module too long to read, and no name of the sandbox or of ``infra`` in the controller, not
even as a string that something would import.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

CONTROLLER = REPO / "controller"
SOURCES = sorted(CONTROLLER.rglob("*.py"))


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _base_names(node: ast.ClassDef) -> set[str]:
    return {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}


def test_every_exception_of_the_controller_is_defined_in_errors_py() -> None:
    """One hierarchy: a class that derives from an exception lives in controller/errors.py."""
    import controller.errors as errors

    ours = {name for name, value in vars(errors).items() if isinstance(value, type)}
    exceptions = {"Exception", "BaseException", *ours}
    elsewhere = [
        f"{path.relative_to(REPO)}:{node.lineno} {node.name}"
        for path in SOURCES
        if path != CONTROLLER / "errors.py"
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.ClassDef) and _base_names(node) & exceptions
    ]
    assert elsewhere == []
    assert all(
        issubclass(value, errors.FailoverError)
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, Exception)
    )

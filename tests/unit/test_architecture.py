"""The controller's architecture, held by tests: what import-linter cannot see.

import-linter (``pyproject.toml``) keeps the parts' layers and who may import whom; these
tests keep the rest of what the layout promises: every exception in the one hierarchy, no
module too long to read, and no name of the sandbox or of ``infra`` in the controller, not
even as a string that something would import.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.kit.paths import REPO

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


def _strings(tree: ast.Module) -> list[tuple[int, str]]:
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


def test_the_controller_names_no_module_of_the_sandbox_or_infra_even_as_a_string() -> None:
    """The controller imports neither (import-linter), and names neither's modules in a string
    something could import (the kind registry's slots name code inside each side's package;
    the CLI reaches the sandbox through the ``failover.extras`` entry points)."""
    module = re.compile(r"\b(?:sandbox|infra)\.[a-z_]\w*")
    named = [
        f"{path.relative_to(REPO)}:{line} {text!r}"
        for path in SOURCES
        for line, text in _strings(_tree(path))
        if module.search(text)
        or (
            text.split(".")[0].split(":")[0] in ("sandbox", "infra")
            and (":" in text or "." in text)
        )
    ]
    assert named == []


#: The longest a controller module may be: past it, a module holds several jobs (spec.py held
#: four in 884 lines, executor.py four in 702).
MAX_LINES = 400


def test_no_controller_module_is_longer_than_one_reader_holds() -> None:
    long = {
        str(path.relative_to(REPO)): n
        for path in SOURCES
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}

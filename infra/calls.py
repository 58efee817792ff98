"""The AWS calls a function's code declares, read from its handler module without importing it.

Used by :mod:`infra.function` to grant a function exactly the actions its code makes on the
resources it depends on. A handler module declares them in a module-level literal::

    #: the AWS calls this handler makes (IAM actions); the role allows these and no others
    AWS_CALLS = ("dynamodb:PutItem", "dynamodb:Scan", "ssm:GetParameter")

Each action goes to the function's dependencies its service acts on (``dynamodb`` on tables,
``sqs`` on queues; a kind deployed by its own module says which in its ``Ref.use_actions``).
Read by ``ast``: the module imports what the bundle carries (powertools), which the Pulumi
program's interpreter need not have. A module without ``AWS_CALLS`` gets each dependency
kind's usual set (``None`` here) and a warning.
``tests/infra/test_infra_permissions.py`` reads the code's boto3 calls and checks the roles
against them, so a declaration that drifts from the code fails there.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from controller.collector import paused_gc
from infra.common import InfraError, Ref

DECLARATION = "AWS_CALLS"
#: the kind of a dependency -> the IAM service that acts on it (a kind deployed by its own
#: module says so itself, in its ``Ref.use_actions``)
KIND_SERVICE = {
    "table": "dynamodb",
    "queue": "sqs",
    "bucket": "s3",
    "stream": "kinesis",
    "parameter": "ssm",
    "function": "lambda",
}
_ACTION = re.compile(r"[a-z0-9-]+:[A-Za-z0-9]+")


def declared_calls(component: str, code_dir: Path, handler: str) -> tuple[str, ...] | None:
    """The ``AWS_CALLS`` of ``handler``'s module in ``code_dir``; ``None`` if it declares none.

    Raises :class:`InfraError` for a declaration that is not a literal list of
    ``service:Action`` strings (whether a dependency serves each is the function's check).
    """
    module = handler.rpartition(".")[0]
    path = code_dir / f"{module.replace('.', '/')}.py"
    try:
        # No collection while the tree is built: a finalizer it runs may build one too (an
        # unretrieved future's traceback, which Python 3.11 formats with ast), and before
        # 3.11.8 both share one depth counter (CPython gh-106905): SystemError, now and then.
        with paused_gc():
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError) as exc:
        raise InfraError(component, f"cannot read {path}: {exc}") from exc
    for node in tree.body:
        target, value = _assignment(node)
        if target != DECLARATION or value is None:
            continue
        try:
            actions = ast.literal_eval(value)
        except ValueError as exc:
            raise InfraError(
                component, f"{path.name}: {DECLARATION} must be a literal tuple of IAM actions"
            ) from exc
        if not isinstance(actions, tuple | list) or not all(
            isinstance(a, str) and _ACTION.fullmatch(a) for a in actions
        ):
            raise InfraError(
                component,
                f"{path.name}: {DECLARATION} must list IAM actions like 'dynamodb:GetItem'",
            )
        return tuple(sorted(set(actions)))
    return None


def service(ref: Ref) -> str | None:
    """The IAM service that acts on ``ref`` (``None``: none a function calls)."""
    if ref.use_actions:
        return ref.use_actions[0].split(":")[0]
    return KIND_SERVICE.get(ref.kind)


def for_ref(actions: tuple[str, ...], ref: Ref) -> tuple[str, ...]:
    """The declared actions that act on the dependency ``ref``."""
    return tuple(a for a in actions if a.split(":")[0] == service(ref))


def _assignment(node: ast.stmt) -> tuple[str | None, ast.expr | None]:
    """``NAME = value`` or ``NAME: type = value`` at module level -> (NAME, value)."""
    if (
        isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
    ):
        return node.targets[0].id, node.value
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id, node.value
    return None, None

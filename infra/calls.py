"""The AWS calls a function's code declares, read from its handler module without importing it.

Used by :mod:`infra.function` to grant a function exactly the actions its code makes on the
resources it depends on. A handler module declares them in a module-level literal::

    #: the AWS calls this handler makes (IAM actions); the role allows these and no others
    AWS_CALLS = ("dynamodb:PutItem", "dynamodb:Scan", "ssm:GetParameter")

Each action goes to the function's dependencies of the kind its service serves (``dynamodb``
to tables, ``sqs`` to queues, ...). Read by ``ast``: the module imports what the bundle carries
(powertools), which the Pulumi program's interpreter need not have. A module without
``AWS_CALLS`` gets each dependency kind's usual set (``None`` here) and a warning.
``tests/infra/test_infra_permissions.py`` reads the code's boto3 calls and checks the roles
against them, so a declaration that drifts from the code fails there.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from infra.common import InfraError

DECLARATION = "AWS_CALLS"
#: the IAM service prefix of an action -> the kind of dependency it acts on
SERVICE_KIND = {"dynamodb": "table", "sqs": "queue", "s3": "bucket", "kinesis": "stream",
                "ssm": "parameter", "events": "bus", "lambda": "function"}
_ACTION = re.compile(r"[a-z0-9-]+:[A-Za-z0-9]+")


def declared_calls(component: str, code_dir: Path, handler: str) -> tuple[str, ...] | None:
    """The ``AWS_CALLS`` of ``handler``'s module in ``code_dir``; ``None`` if it declares none.

    Raises :class:`InfraError` for a declaration that is not a literal list of
    ``service:Action`` strings of a service a function's dependencies can serve.
    """
    module = handler.rpartition(".")[0]
    path = code_dir / f"{module.replace('.', '/')}.py"
    try:
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
            raise InfraError(component, f"{path.name}: {DECLARATION} must be a literal "
                                        "tuple of IAM actions") from exc
        if not isinstance(actions, tuple | list) or not all(
                isinstance(a, str) and _ACTION.fullmatch(a) for a in actions):
            raise InfraError(component, f"{path.name}: {DECLARATION} must list IAM actions "
                                        "like 'dynamodb:GetItem'")
        unknown = sorted({a.split(":")[0] for a in actions} - set(SERVICE_KIND))
        if unknown:
            raise InfraError(component, f"{path.name}: {DECLARATION} names {unknown}; a "
                                        f"function's dependencies serve {sorted(SERVICE_KIND)}")
        return tuple(sorted(set(actions)))
    return None


def for_kind(actions: tuple[str, ...], kind: str) -> tuple[str, ...]:
    """The declared actions that act on a dependency of ``kind``."""
    return tuple(a for a in actions if SERVICE_KIND.get(a.split(":")[0]) == kind)


def _assignment(node: ast.stmt) -> tuple[str | None, ast.expr | None]:
    """``NAME = value`` or ``NAME: type = value`` at module level -> (NAME, value)."""
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(
            node.targets[0], ast.Name):
        return node.targets[0].id, node.value
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id, node.value
    return None, None

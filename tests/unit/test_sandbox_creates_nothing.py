"""No module of the sandbox creates an AWS resource by itself: the Pulumi program does.

Every call in ``sandbox/`` whose name is an AWS operation that creates or configures a resource
(``create_*``, ``put_*``, ``add_*``, ``attach_*``, ``publish_*``, ``register_*``, ``tag_*``,
``set_*``, ``enable_*``, ``start_*``, ``increase_*`` of the services the sandbox calls) is found by
reading the sources, and each must be one of three things: in the deployment's mapping (the
program's resources), a write of the data plane (an item, a message, a metric, an event: what an
application does), or one of the account's preconditions (the hosted zone an operator creates
before ``pulumi up``), or a state the sandbox sets where AWS would compute it (an alarm's state,
until the sandbox evaluates alarms).
"""

from __future__ import annotations

import ast
import functools
import re

import botocore.session
import pytest

from sandbox.launcher import MODELS
from tests.kit.paths import REPO

#: The services the sandbox's servers serve (the launcher loads their models before forking).
SERVICES = MODELS
CREATING = re.compile(
    r"^(create|put|add|attach|publish|register|tag|set|enable|start|increase|update|"
    r"change|associate|import|upload|copy|restore)_"
)
#: What the program's deployment makes: the mapping's module and nothing else.
MAPPING = "sandbox/deploy/mapping.py"
#: Writes an application makes, or Lambda and global tables on its behalf: not resources.
DATA_PLANE = frozenset(
    {
        "put_item",
        "update_item",
        "put_record",
        "put_records",
        "put_events",
        "put_metric_data",
        "put_object",
        "update_event_source_mapping",  # not in the sandbox: the controller's
    }
)
#: The account's preconditions (README, "Deploy to AWS", step 1), in one module.
PRECONDITIONS = {"sandbox/account.py": frozenset({"create_hosted_zone"})}


@functools.cache
def operations() -> frozenset[str]:
    """Every operation of the services the sandbox calls that creates or changes a resource, in
    botocore's Python spelling (read once: loading the services' models took a second of every
    test here)."""
    from botocore import xform_name

    session = botocore.session.get_session()
    out = set()
    for service in SERVICES:
        model = session.get_service_model(service)
        for name in model.operation_names:
            py = xform_name(name)
            if CREATING.match(py):
                out.add(py)
    return frozenset(out)


def calls_in(path: str) -> list[tuple[int, str]]:
    """``(line, name)`` of every attribute call in the module at ``path``."""
    tree = ast.parse((REPO / path).read_text(encoding="utf-8"))
    return [
        (node.lineno, node.func.attr)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    ]


def test_the_scan_knows_the_calls_that_create_resources() -> None:
    ops = operations()
    assert {"create_queue", "create_function", "put_metric_alarm", "add_permission"} <= ops
    assert "put_item" in ops and "send_message" not in ops  # data writes are told apart below
    # and it finds them: the mapping makes what the program declares
    found = {name for _, name in calls_in(MAPPING)}
    assert {"create_queue", "create_function", "put_metric_alarm", "create_table"} <= found


@pytest.mark.parametrize(
    "path",
    sorted(
        str(p.relative_to(REPO))
        for p in (REPO / "sandbox").rglob("*.py")
        if str(p.relative_to(REPO)) != MAPPING
    ),
)
def test_no_module_of_the_sandbox_creates_a_resource_by_itself(path: str) -> None:
    ops = operations()
    allowed = DATA_PLANE | PRECONDITIONS.get(path, frozenset())
    offending = [f"{path}:{line} {name}" for line, name in calls_in(path) if name in ops]
    assert [o for o in offending if o.rsplit(" ", 1)[1] not in allowed] == []

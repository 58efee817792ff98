"""A handler's ``AWS_CALLS`` is read without importing it, and refused when it cannot be right."""

from __future__ import annotations

import ast
import contextlib
import gc
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.topology import load
from controller.topology.kinds import FunctionSpec
from infra.calls import declared_calls
from infra.common import InfraError, Ref, Settings
from infra.function import FunctionArgs, RegionalFunction
from tests.kit.paths import EXAMPLE
from tests.kit.pulumi_mocks import run_resources

TOPOLOGY = """\
app: shop
regions: {primary: eu-west-1, standby: [eu-central-1]}
components:
  carts: {kind: table, hash_key: id}
  cart:
    kind: function
    handler: app.handler
    writes: %s
    depends_on: [carts]
"""


def write(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "app.py").write_text(
        "import not_installed_here\n"
        + textwrap.dedent(body)
        + "\ndef handler(event, context):\n    return {}\n",
        encoding="utf-8",
    )
    return folder


def test_the_declaration_is_read_without_importing_the_module(tmp_path: Path) -> None:
    folder = write(
        tmp_path,
        'AWS_CALLS: tuple[str, ...] = ("sqs:SendMessage", "dynamodb:GetItem", "sqs:SendMessage")\n',
    )
    assert declared_calls("cart", folder, "app.handler") == ("dynamodb:GetItem", "sqs:SendMessage")


def test_a_module_without_a_declaration_declares_nothing(tmp_path: Path) -> None:
    assert declared_calls("cart", write(tmp_path, "X = 1\n"), "app.handler") is None


@pytest.mark.parametrize(
    "body, says",
    [
        ("AWS_CALLS = tuple(['dynamodb:GetItem'])\n", "literal"),
        ("AWS_CALLS = ('dynamodb:*',)\n", "IAM actions"),
    ],
)
def test_a_declaration_that_cannot_be_granted_is_refused(
    tmp_path: Path, body: str, says: str
) -> None:
    with pytest.raises(InfraError, match=r"components\.cart: app\.py") as err:
        declared_calls("cart", write(tmp_path, body), "app.handler")
    assert says in str(err.value)


def cart(tmp_path: Path, writes: bool, calls: str) -> None:
    """Build the cart function alone, from a topology whose handler declares ``calls``."""
    (tmp_path / "topology.yaml").write_text(TOPOLOGY % str(writes).lower(), encoding="utf-8")
    write(tmp_path / "functions", f"AWS_CALLS = {calls}\n")
    topology = load(tmp_path / "topology.yaml")
    spec = topology.components["cart"]
    assert isinstance(spec, FunctionSpec)
    mode = Ref(kind="parameter", name="/m", arn="arn:aws:ssm:eu-west-1:1:parameter/m")
    table = Ref(kind="table", name="carts", arn="arn:aws:dynamodb:eu-west-1:1:table/carts")
    args = FunctionArgs(
        topology=topology,
        name="cart",
        spec=spec,
        region="eu-west-1",
        refs={"carts": table},
        mode_parameter=mode,
        component_mode_parameter=mode,
        settings=Settings(),
    )
    run_resources(lambda: RegionalFunction("cart", args))


def test_a_call_on_a_kind_the_function_does_not_depend_on_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        InfraError, match="sqs:SendMessage but the function depends on nothing sqs acts on"
    ):
        cart(tmp_path, True, '("dynamodb:GetItem", "sqs:SendMessage")')
    with pytest.raises(InfraError, match="iam:CreateUser but"):
        cart(tmp_path, True, '("iam:CreateUser",)')


def test_a_write_declared_by_a_function_that_does_not_write_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InfraError, match="dynamodb:PutItem but the function has writes: false"):
        cart(tmp_path, False, '("dynamodb:PutItem",)')
    cart(tmp_path, False, '("dynamodb:GetItem",)')  # a read is fine


@contextlib.contextmanager
def collections_that_parse() -> Iterator[None]:
    """A collection every 50 allocations, each running code that builds an AST, as a failed
    deploy's unretrieved future does when collected (its traceback, formatted by Python 3.11,
    is parsed); the collector put back as it was after."""
    threshold = gc.get_threshold()

    def parse(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            ast.parse("x = [1, (2, {3: 4})]")

    gc.callbacks.append(parse)
    gc.set_threshold(50)
    try:
        yield
    finally:
        gc.callbacks.remove(parse)
        gc.set_threshold(*threshold)


def test_a_collection_during_the_read_does_not_break_it() -> None:
    """Before Python 3.11.8, an AST built inside another's construction (by a collection's
    finalizer) made the outer one fail with SystemError (CPython gh-106905): here, without the
    pause, 20 reads in 20 on 3.11.2 and 3.11.7. A full test run failed on it, in
    tests/infra/test_infra_manifest_write.py."""
    functions = EXAMPLE.parent / "functions"
    failed: list[SystemError] = []
    with collections_that_parse():  # put back before anything formats a failure
        for _ in range(20):
            try:
                assert declared_calls("worker", functions, "worker.handler")
            except SystemError as exc:
                failed.append(exc)
    assert failed == []

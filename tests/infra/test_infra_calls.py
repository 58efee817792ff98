"""A handler's ``AWS_CALLS`` is read without importing it, and refused when it cannot be right."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from controller.topology import load
from controller.topology.kinds import FunctionSpec
from infra.calls import declared_calls
from infra.common import InfraError, Ref, Settings
from infra.function import FunctionArgs, RegionalFunction
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

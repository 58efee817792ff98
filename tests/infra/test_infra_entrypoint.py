"""``infra/__main__.py``: reads the stack config and deploys the topology it names.

Run as Pulumi runs it (``runpy`` on the file) under mocks, with stack config set.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import pulumi
import pytest

from infra.common import PROJECT_ROOT
from tests.kit.pulumi_mocks import RecordingMocks

MINI = """
app: mini
regions: {primary: us-east-2, standby: [us-west-1]}
components:
  token: {kind: parameter, secure: true}
  jobs: {kind: queue}
  fn: {kind: function, events: [{source: jobs}], depends_on: [token]}
"""


def test_main_deploys_the_topology_named_in_config(tmp_path: Path) -> None:
    spec = tmp_path / "mini.yaml"
    spec.write_text(MINI, encoding="utf-8")
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "app.py").write_text("def handler(e, c):\n    return e\n")
    mocks = RecordingMocks()
    mocks.install()

    @pulumi.runtime.test
    def program() -> None:
        pulumi.runtime.set_all_config(
            {
                "failover:topology": str(spec),
                "failover:logRetentionDays": "7",
                "failover:secret-token": "from-config",
            },
            ["failover:secret-token"],
        )
        runpy.run_path(str(PROJECT_ROOT / "infra" / "__main__.py"))

    program()
    functions = {
        r.inputs["name"]: r for r in mocks.resources if r.typ == "aws:lambda/function:Function"
    }
    stack = pulumi.get_stack()  # the mocks' stack: every physical name carries it
    assert stack
    assert set(functions) == {
        f"mini-{stack}-fn-us-east-2",
        f"mini-{stack}-fn-us-west-1",
        # and each region's watcher (infra/watchers.py)
        f"mini-{stack}-failover-watcher-us-east-2",
        f"mini-{stack}-failover-watcher-us-west-1",
    }
    assert {
        r.inputs["retentionInDays"]
        for r in mocks.resources
        if r.typ == "aws:cloudwatch/logGroup:LogGroup"
    } == {7}
    token = [
        r.inputs["value"]
        for r in mocks.resources
        if r.typ == "aws:ssm/parameter:Parameter"
        and r.inputs["name"].startswith(f"mini-{stack}-token-")
    ]
    assert len(token) == 2
    assert all(v["value"] == "from-config" for v in token), "the secret comes from config"


def test_a_topology_the_validator_refuses_stops_pulumi_with_its_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "typo.yaml"
    spec.write_text(
        MINI.replace("fn: {kind: function,", "fn: {kind: function, code: fuctions,"),
        encoding="utf-8",
    )
    mocks = RecordingMocks()
    mocks.install()

    @pulumi.runtime.test
    def program() -> None:
        pulumi.runtime.set_all_config({"failover:topology": str(spec)})
        runpy.run_path(str(PROJECT_ROOT / "infra" / "__main__.py"))

    with pytest.raises(pulumi.RunError, match="code folder 'fuctions' does not exist") as info:
        program()
    assert "\n" not in str(info.value)
    assert mocks.resources == [], "nothing is created"

"""IAM's size limits on a large topology: the policies must not grow with the function count.

IAM counts a policy's characters without white space: all the inline policies of one role
together at most 10,240, one managed policy at most 6,144. The watcher's inline policy held
every function's, alias's and mapping's ARN: over the limit at about 8 functions.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections import defaultdict

import pytest
import yaml
from infra_mocks import SETTINGS, Run, is_watcher, run_program

from controller.spec import load
from infra.global_ import FUNCTION_DEPLOY_WRITES, FUNCTION_WRITES

INLINE_PER_ROLE = 10_240
MANAGED = 6_144
FUNCTIONS = 50


@pytest.fixture(scope="module")
def fifty(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Fifty functions in three regions, each fed by its own queue, every fifth on a schedule."""
    tmp = tmp_path_factory.mktemp("fifty")
    (tmp / "functions").mkdir()
    (tmp / "functions" / "app.py").write_text("def handler(e, c):\n    return {}\n")
    components: dict[str, object] = {"orders": {"kind": "table"}}
    for i in range(FUNCTIONS):
        components[f"queue-{i:02d}"] = {"kind": "queue"}
        components[f"worker-{i:02d}"] = {
            "kind": "function",
            "events": [{"source": f"queue-{i:02d}"}],
            "depends_on": ["orders"],
        }
        if i % 5 == 0:
            components[f"tick-{i:02d}"] = {
                "kind": "schedule",
                "expression": "rate(5 minutes)",
                "target": f"worker-{i:02d}",
            }
    topology = {
        "app": "shop",
        "regions": {"primary": "us-east-1", "standby": ["us-west-2", "eu-west-1"]},
        "components": components,
    }
    (tmp / "topology.yaml").write_text(yaml.safe_dump(topology))
    return run_program(load(tmp / "topology.yaml"), SETTINGS["example"]())


def size(policy: str) -> int:
    """A policy's size as IAM counts it: its characters less white space."""
    return len(re.sub(r"\s", "", policy))


def test_a_fifty_function_topology_stays_under_iams_policy_size_limits(fifty: Run) -> None:
    inline: dict[str, int] = defaultdict(int)
    for policy in fifty.of("aws:iam/rolePolicy:RolePolicy"):
        inline[policy.inputs["role"]] += size(policy.inputs["policy"])
    watchers = {r: n for r, n in inline.items() if is_watcher(r)}
    assert len(watchers) == 3 and len(inline) >= 3 * FUNCTIONS
    over = {role: n for role, n in inline.items() if n > INLINE_PER_ROLE}
    assert not over, over
    managed = {p.name: size(p.inputs["policy"]) for p in fifty.of("aws:iam/policy:Policy")}
    assert any("controller" in n for n in managed) and any("deployer" in n for n in managed)
    over = {name: n for name, n in managed.items() if n > MANAGED}
    assert not over, over


def test_no_pattern_lets_the_controller_or_deployer_change_a_watcher(fifty: Run) -> None:
    """The app's function pattern matches the watchers too: a Deny keeps the controller from
    throttling them and the deployer from shipping code that runs with their role."""
    t = fifty.topology
    watcher_arns = [
        f"arn:aws:lambda:{r}:123456789012:function:{t.watcher_function(r)}{s}"
        for r in t.regions.all
        for s in ("", ":live")
    ]
    docs = [json.loads(p.inputs["policy"]) for p in fifty.of("aws:iam/policy:Policy")]
    docs += [json.loads(p.inputs["policy"]) for p in fifty.of("aws:iam/rolePolicy:RolePolicy")]
    writes = set(FUNCTION_WRITES + FUNCTION_DEPLOY_WRITES)
    for doc in docs:
        for st in (s for s in doc["Statement"] if s["Effect"] == "Allow"):
            for action in writes & set(st["Action"]):
                for arn in watcher_arns:
                    if not any(fnmatch.fnmatchcase(arn, r) for r in st["Resource"]):
                        continue
                    denied = any(
                        d["Effect"] == "Deny"
                        and action in d["Action"]
                        and any(fnmatch.fnmatchcase(arn, r) for r in d["Resource"])
                        for d in doc["Statement"]
                    )
                    assert denied, (action, arn)


def test_the_patterns_still_reach_every_function_and_mapping(fifty: Run) -> None:
    """Compact, not blind: every function, alias and mapping the controller fences matches."""
    controller = [
        json.loads(p.inputs["policy"])
        for p in fifty.of("aws:iam/policy:Policy")
        if "failover-controller" in p.name
    ]
    allowed: dict[str, list[str]] = defaultdict(list)
    for doc in controller:
        for st in (s for s in doc["Statement"] if s["Effect"] == "Allow"):
            for action in st["Action"]:
                allowed[action] += st["Resource"]

    def reaches(arn: str, action: str) -> bool:
        return any(fnmatch.fnmatchcase(arn, r) for r in allowed[action])

    for fn in fifty.of("aws:lambda/function:Function"):
        if is_watcher(fn.name):
            continue
        for arn in (fn.state["arn"], f"{fn.state['arn']}:live"):
            assert any(
                fnmatch.fnmatchcase(arn, r) for r in allowed["lambda:PutFunctionConcurrency"]
            )
    for mapping in fifty.of("aws:lambda/eventSourceMapping:EventSourceMapping"):
        arn = mapping.state["arn"]
        assert reaches(arn, "lambda:UpdateEventSourceMapping"), arn
    for rule in fifty.of("aws:cloudwatch/eventRule:EventRule"):
        if not is_watcher(rule.name):
            assert any(
                fnmatch.fnmatchcase(rule.state["arn"], r) for r in allowed["events:DisableRule"]
            )

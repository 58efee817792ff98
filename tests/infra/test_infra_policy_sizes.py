"""IAM's size limits on a large topology: the policies must not grow with the function count.

IAM counts a policy's characters without white space: all the inline policies of one role
together at most 10,240, one managed policy at most 6,144. The watcher's inline policy held
every function's, alias's and mapping's ARN: over the limit at about 8 functions.

The program runs for :data:`FEW` and :data:`MANY` functions: every role's policies and every
managed policy have the same size in both, and are under IAM's limits. A policy that grew by
as little as one character per function would differ, where one run of fifty functions (the
test before) caught only growth of more than about 100 characters a function (the largest
managed policy's room under its limit, shared by fifty).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from controller.topology import load
from infra.global_ import FUNCTION_DEPLOY_WRITES, FUNCTION_WRITES
from tests.kit.pulumi_mocks import SETTINGS, Run, is_watcher, run_program

INLINE_PER_ROLE = 10_240
MANAGED = 6_144
FEW, MANY = 10, 20


def program(tmp: Path, functions: int) -> Run:
    """``functions`` functions in three regions, each fed by its own queue, every fifth on a
    schedule."""
    (tmp / "functions").mkdir()
    (tmp / "functions" / "app.py").write_text("def handler(e, c):\n    return {}\n")
    components: dict[str, object] = {"orders": {"kind": "table"}}
    for i in range(functions):
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


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Run]:
    """The program for :data:`FEW` and for :data:`MANY` functions."""
    return {n: program(tmp_path_factory.mktemp(f"functions-{n}"), n) for n in (FEW, MANY)}


@pytest.fixture(scope="module")
def many(runs: dict[int, Run]) -> Run:
    """The program for :data:`MANY` functions."""
    return runs[MANY]


def size(policy: str) -> int:
    """A policy's size as IAM counts it: its characters less white space."""
    return len(re.sub(r"\s", "", policy))


def sizes(run: Run) -> tuple[dict[str, int], dict[str, int]]:
    """Each role's inline policies' size together, and each managed policy's size."""
    inline: dict[str, int] = defaultdict(int)
    for policy in run.of("aws:iam/rolePolicy:RolePolicy"):
        inline[policy.inputs["role"]] += size(policy.inputs["policy"])
    managed = {p.name: size(p.inputs["policy"]) for p in run.of("aws:iam/policy:Policy")}
    return dict(inline), managed


def test_the_policies_do_not_grow_with_the_function_count_and_stay_under_iams_limits(
    runs: dict[int, Run],
) -> None:
    (few, few_managed), (many, many_managed) = sizes(runs[FEW]), sizes(runs[MANY])
    for inline, functions in ((few, FEW), (many, MANY)):
        assert sum(is_watcher(role) for role in inline) == 3 and len(inline) >= 3 * functions
    # every role and managed policy the smaller program has, the larger has at the same size
    assert {role: many[role] for role in few} == few
    assert many_managed == few_managed
    assert any("controller" in n for n in many_managed)
    assert any("deployer" in n for n in many_managed)
    over = {role: n for role, n in many.items() if n > INLINE_PER_ROLE}
    over |= {name: n for name, n in many_managed.items() if n > MANAGED}
    assert not over, over


def test_no_pattern_lets_the_controller_or_deployer_change_a_watcher(many: Run) -> None:
    """The app's function pattern matches the watchers too: a Deny keeps the controller from
    throttling them and the deployer from shipping code that runs with their role."""
    t = many.topology
    watcher_arns = [
        f"arn:aws:lambda:{r}:123456789012:function:{t.watcher_function(r)}{s}"
        for r in t.regions.all
        for s in ("", ":live")
    ]
    docs = [json.loads(p.inputs["policy"]) for p in many.of("aws:iam/policy:Policy")]
    docs += [json.loads(p.inputs["policy"]) for p in many.of("aws:iam/rolePolicy:RolePolicy")]
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


def test_the_patterns_still_reach_every_function_and_mapping(many: Run) -> None:
    """Compact, not blind: every function, alias and mapping the controller fences matches."""
    controller = [
        json.loads(p.inputs["policy"])
        for p in many.of("aws:iam/policy:Policy")
        if "failover-controller" in p.name
    ]
    allowed: dict[str, list[str]] = defaultdict(list)
    for doc in controller:
        for st in (s for s in doc["Statement"] if s["Effect"] == "Allow"):
            for action in st["Action"]:
                allowed[action] += st["Resource"]

    def reaches(arn: str, action: str) -> bool:
        return any(fnmatch.fnmatchcase(arn, r) for r in allowed[action])

    for fn in many.of("aws:lambda/function:Function"):
        if is_watcher(fn.name):
            continue
        for arn in (fn.state["arn"], f"{fn.state['arn']}:live"):
            assert any(
                fnmatch.fnmatchcase(arn, r) for r in allowed["lambda:PutFunctionConcurrency"]
            )
    for mapping in many.of("aws:lambda/eventSourceMapping:EventSourceMapping"):
        arn = mapping.state["arn"]
        assert reaches(arn, "lambda:UpdateEventSourceMapping"), arn
    for rule in many.of("aws:cloudwatch/eventRule:EventRule"):
        if not is_watcher(rule.name):
            assert any(
                fnmatch.fnmatchcase(rule.state["arn"], r) for r in allowed["events:DisableRule"]
            )

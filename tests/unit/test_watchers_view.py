"""``failover watchers``: each region's watcher as its item in the control table says it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from controller.controltable.watchstate import WatchState
from controller.interfaces import views
from controller.interfaces.cli import watch_cmds
from tests.kit.cli import CliResult


def shown(cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch, state: WatchState) -> str:
    """The text ``failover watchers`` prints for one watcher whose item is ``state``."""
    row: dict[str, Any] = {
        "region": state.region,
        "silent": False,
        "seconds_since_evaluation": 4.0,
        "function": "f",
        "log_group": "g",
        "log_file": None,
        "last": state.to_dict(),
    }
    monkeypatch.setattr(watch_cmds, "load_deployment", lambda manifest, spec: (None, None, None))
    monkeypatch.setattr(views, "watcher_rows", lambda topology, manifest, clients: [row])
    monkeypatch.setenv("COLUMNS", "200")
    result = cli("watchers")
    assert result.code == 0, result.err
    return result.out


def test_a_watcher_owing_a_full_read_says_of_which_region(
    cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Until a full read covers a region it saw not answering, the watcher owes it one
    (:mod:`controller.watchers.owed`): the operator sees which, as ``--json`` says it."""
    decision = {"action": "none", "reason": "eu-west-1 healthy"}
    owing = WatchState("eu-west-1", evaluations=7, decision=decision, unsettled=("us-east-1",))
    assert "us-east-1" in shown(cli, monkeypatch, owing)
    settled = WatchState("eu-west-1", evaluations=8, decision=decision, unsettled=())
    assert "us-east-1" not in shown(cli, monkeypatch, settled)

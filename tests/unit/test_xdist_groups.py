"""The guard that stops `make test` when pytest-xdist's groups do not take (tests/conftest.py)."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from tests.conftest import GroupCheck, ungrouped
from tests.kit.paths import REPO

MODULES = [
    "tests/unit/test_a.py",
    "tests/unit/test_b.py",
    "tests/sandbox/test_c.py",
    "tests/sandbox/test_d.py",
]
INDEPENDENT = [
    *(f"tests/sandbox/test_runbooks.py::test_runbook_runs_as_written[{p}]" for p in "abc"),
    "tests/sandbox/test_crash.py::test_resume_after_kill_at_every_step[3]",
]


def test_a_worker_whose_tests_came_back_ungrouped_stops_the_run_in_one_line() -> None:
    ids = [f"{module}::test_x[p]" for module in MODULES]
    node = SimpleNamespace(gateway=SimpleNamespace(id="gw0"))
    with pytest.raises(pytest.exit.Exception) as stopped:
        GroupCheck().pytest_xdist_node_collection_finished(node, ids)
    assert "ignored every xdist_group on worker gw0" in str(stopped.value)
    assert "\n" not in str(stopped.value)


def test_grouped_tests_are_seen_even_beside_independent_ones() -> None:
    grouped = [f"{module}::test_x@{module.rsplit('/', 1)[1]}" for module in MODULES]
    assert ungrouped(grouped + INDEPENDENT) is False
    assert ungrouped([i.split("@")[0] for i in grouped] + INDEPENDENT) is True


def test_an_at_sign_inside_a_parameter_is_not_mistaken_for_a_group() -> None:
    assert ungrouped([f"{module}::test_x[a@b]" for module in MODULES]) is True
    assert ungrouped([f"{module}::test_x[a@b]@g" for module in MODULES]) is False


def test_a_selection_of_only_independent_tests_is_not_refused() -> None:
    assert ungrouped(INDEPENDENT) is False


def test_independent_tests_live_in_no_more_modules_than_the_guard_allows() -> None:
    marked = {
        path.name
        for path in (REPO / "tests").rglob("test_*.py")
        if re.search(r"^@pytest\.mark\.independent", path.read_text(encoding="utf-8"), re.M)
    }
    assert 0 < len(marked) <= 3, marked  # else widen ungrouped()'s module count

"""The stack cache's key and address rewrite (:mod:`sandbox.deploy.cache`)."""

from __future__ import annotations

import os
import pickle
import shutil
import threading
from pathlib import Path

import pytest

from sandbox.deploy import cache as stack_cache
from tests.kit.paths import EXAMPLE
from tests.kit.polling import until

KEPT = {"us-east-1": "http://127.0.0.1:41001", "global": "http://127.0.0.1:41002"}
NOW = {"us-east-1": "http://127.0.0.1:41002", "global": "http://127.0.0.1:39999"}


def test_every_address_moves_to_its_servers_new_one_in_one_pass_and_the_pickle_still_loads() -> (
    None
):
    held = {
        "env": {"QUEUE": "http://127.0.0.1:41001/123456789012/orders"},
        "store": ["127.0.0.1:41002", "127.0.0.1:41001"],
        "other": "http://127.0.0.1:5555/x",  # not a server of the sandbox: left as it was
    }
    rewrite = stack_cache.rebase(KEPT, NOW)
    assert rewrite is not None
    # 41001 -> 41002 and 41002 -> 39999 at once: a rewrite in two passes would send the first
    # to 39999 too.
    assert pickle.loads(rewrite(pickle.dumps(held))) == {  # noqa: S301 (its own bytes)
        "env": {"QUEUE": "http://127.0.0.1:41002/123456789012/orders"},
        "store": ["127.0.0.1:39999", "127.0.0.1:41002"],
        "other": "http://127.0.0.1:5555/x",
    }


@pytest.mark.parametrize(
    "now",
    [
        {"us-east-1": "http://127.0.0.1:4100", "global": "http://127.0.0.1:41003"},
        {"us-east-1": "http://127.0.0.1:41003"},  # a server the stack was kept with is gone
    ],
)
def test_no_rewrite_when_an_address_changes_length_or_a_server_is_missing(
    now: dict[str, str],
) -> None:
    assert stack_cache.rebase(KEPT, now) is None


def copy_of_example(tmp: Path) -> Path:
    folder = tmp / "orders"
    shutil.copytree(EXAMPLE.parent, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder / EXAMPLE.name


def test_the_key_changes_with_the_spec_and_the_files_beside_it_and_not_with_the_state_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = copy_of_example(tmp_path)
    first = stack_cache.key(spec)
    assert first is not None and stack_cache.key(spec) == first
    (spec.parent / ".failover").mkdir()  # the sandbox's own state beside it: not an input
    (spec.parent / ".failover" / "sandbox.json").write_text("{}")
    assert stack_cache.key(spec) == first
    handler = next(p for p in spec.parent.rglob("*.py"))
    handler.write_text(handler.read_text() + "\n# changed\n")
    changed_code = stack_cache.key(spec)
    assert changed_code not in (None, first)
    spec.write_text(spec.read_text() + "\n# changed\n")
    changed_spec = stack_cache.key(spec)
    assert changed_spec not in (None, first, changed_code)
    monkeypatch.setenv(stack_cache.SWITCH, "0")
    assert stack_cache.key(spec) is None


def keep(digest: str, urls: dict[str, str], source: Path) -> None:
    """Deploy ``digest`` twice: kept the second time."""
    stack_cache.keep(digest, urls, {"us-east-1.deployed": source})
    stack_cache.keep(digest, urls, {"us-east-1.deployed": source})


def test_a_stack_is_kept_the_second_time_it_is_deployed_and_the_last_used_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAILOVER_CACHE_DIR", str(tmp_path / "cache"))
    source = tmp_path / "us-east-1.deployed"
    source.write_bytes(b"first")
    stack_cache.keep("a", KEPT, {"us-east-1.deployed": source})
    assert stack_cache.find("a") is None  # deployed once: a test's own topology, say
    stack_cache.keep("a", KEPT, {"us-east-1.deployed": source})
    kept = stack_cache.find("a")
    assert kept is not None and kept.urls == KEPT
    assert kept.snapshot("us-east-1").read_bytes() == b"first"
    source.write_bytes(b"second")  # the sandbox's file changes: the kept one does not
    assert kept.snapshot("us-east-1").read_bytes() == b"first"
    stack_cache.keep("a", NOW, {"us-east-1.deployed": source})  # kept already: stays as it was
    again = stack_cache.find("a")
    assert again is not None and again.urls == KEPT
    keep("b", KEPT, source)
    keep("c", KEPT, source)
    for age, digest in enumerate("acb"):  # last used: a long ago, then c, then b
        os.utime(stack_cache.folder() / digest, (1000 + age, 1000 + age))
    keep("d", KEPT, source)
    assert stack_cache.find("a") is None  # the least recently used of four, evicted
    assert all(stack_cache.find(d) is not None for d in "bcd")
    assert stack_cache.find("zzz") is None


def test_a_code_folder_outside_the_specs_folder_is_in_the_key(tmp_path: Path) -> None:
    """A spec may name ``code: ../src``: a change there must not put back a stale function."""
    spec = tmp_path / "deploy" / "topology.yaml"
    spec.parent.mkdir()
    spec.write_text("app: x\n")
    src = tmp_path / "src"
    src.mkdir()
    (src / "handler.py").write_text("def handler(event, context): return 1\n")
    before = stack_cache.key(spec, [src])
    assert before is not None
    assert stack_cache.key(spec, [src, spec.parent]) == before  # a folder hashed once
    (src / "handler.py").write_text("def handler(event, context): return 2\n")
    assert stack_cache.key(spec, [src]) not in (None, before)


def test_a_sandbox_started_while_another_deploys_its_key_waits_and_gets_that_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test suite's workers start sandboxes of the example at once: one deploys, the others
    wait and put its stack back, kept the first time because they waited for it."""
    monkeypatch.setenv("FAILOVER_CACHE_DIR", str(tmp_path / "cache"))
    source = tmp_path / "us-east-1.deployed"
    source.write_bytes(b"deployed")
    got: list[stack_cache.Kept | None] = []

    def second_sandbox() -> None:
        with stack_cache.claimed("a") as kept:
            got.append(kept)

    with stack_cache.claimed("a") as kept:
        assert kept is None  # nothing kept: this one deploys
        waiter = threading.Thread(target=second_sandbox)
        waiter.start()
        seen = stack_cache.folder() / ".seen-a"
        until(seen.exists, 30, "the second sandbox marks the key wanted twice")
        assert waiter.is_alive() and not got  # it waits for the first, deploying nothing
        with stack_cache.claimed("b", wait=0.0) as other:  # another key: no wait, no mark
            assert other is None
        assert not (stack_cache.folder() / ".seen-b").exists()
        stack_cache.keep("a", KEPT, {"us-east-1.deployed": source})  # its first deployment
    waiter.join(30)
    assert len(got) == 1 and got[0] is not None, got
    assert got[0].urls == KEPT and got[0].snapshot("us-east-1").read_bytes() == b"deployed"


def test_a_sandbox_that_waits_too_long_for_another_deploys_the_key_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deployment that hangs (or takes longer than :data:`~sandbox.deploy.cache.WAIT`) holds
    no other sandbox up for good."""
    monkeypatch.setenv("FAILOVER_CACHE_DIR", str(tmp_path / "cache"))
    with stack_cache.claimed("a") as first, stack_cache.claimed("a", wait=0.2) as second:
        assert first is None and second is None  # neither found a stack: both deploy

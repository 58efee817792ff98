"""botocore's models are parsed once per machine (:mod:`controller.aws.models`): a later process
reads the copy, which holds what botocore's own parse holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import botocore.loaders
import pytest

from controller.aws.models import PRUNE_AFTER, ModelCache

#: Makes a client of each service named on its command line (against an unused loopback port:
#: nothing is sent) and prints how many data files this process parsed, ours and botocore's.
PROBE = """
import json, sys
import botocore.loaders
from controller.aws import models
from controller.aws import Clients
parsed = {"ours": 0, "botocore": 0}
ours, theirs = models.ModelCache.parse, botocore.loaders.JSONFileLoader._load_file
def parse(source):
    parsed["ours"] += 1
    return ours(source)
def load(self, path, opener):
    parsed["botocore"] += 1
    return theirs(self, path, opener)
models.ModelCache.parse = staticmethod(parse)
botocore.loaders.JSONFileLoader._load_file = load
clients = Clients(endpoints={"us-east-1": "http://127.0.0.1:9", "global": "http://127.0.0.1:9"})
for service in sys.argv[1:]:
    clients.client(service, "us-east-1")
print(json.dumps(parsed))
"""


def _parsed(cache: Path, *services: str) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *services],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "FAILOVER_CACHE_DIR": str(cache)},
    )
    parsed: dict[str, int] = json.loads(done.stdout)
    return parsed


def test_a_later_process_parses_no_model(tmp_path: Path) -> None:
    """The first process parses the endpoints and each service's model and rules (botocore's
    own parser never runs: the session reads through the cache); the next parses nothing."""
    first = _parsed(tmp_path, "lambda", "dynamodb")
    assert first["ours"] >= 7 and first["botocore"] == 0
    assert _parsed(tmp_path, "lambda", "dynamodb") == {"ours": 0, "botocore": 0}
    assert _parsed(tmp_path, "lambda", "sqs")["ours"] == 2  # sqs's model and rules only


def _model(service: str, kind: str = "service-2") -> str:
    loader = botocore.loaders.Loader()
    version = loader.determine_latest_version(service, kind)
    return f"{loader.BUILTIN_DATA_PATH}/{service}/{version}/{kind}"


@pytest.mark.parametrize(
    "path",
    [_model("lambda"), _model("dynamodb", "endpoint-rule-set-1"), "endpoints"],
    ids=["lambda-model", "dynamodb-rules", "endpoints"],
)
def test_a_copy_holds_what_botocore_parses(tmp_path: Path, path: str) -> None:
    if "/" not in path:
        path = f"{botocore.loaders.Loader.BUILTIN_DATA_PATH}/{path}"
    theirs = botocore.loaders.JSONFileLoader().load_file(path)
    cache = ModelCache(tmp_path)
    assert cache.load_file(path) == theirs  # parsed, and kept
    assert [p.suffix for p in tmp_path.iterdir()] == [".marshal"]
    assert cache.load_file(path) == theirs  # read back
    assert cache.load_file(path + "-nowhere") is None


def test_a_cache_that_cannot_be_written_costs_only_the_parse(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    cache = ModelCache(blocker / "models")  # under a file: unwritable
    path = _model("sqs")
    assert cache.load_file(path) == botocore.loaders.JSONFileLoader().load_file(path)


def test_a_torn_copy_is_parsed_again(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path)
    path = _model("sqs")
    expected = cache.load_file(path)
    (copy,) = tmp_path.iterdir()
    copy.write_bytes(copy.read_bytes()[:100])
    assert cache.load_file(path) == expected
    assert cache.load_file(path) == expected


def test_a_lambda_function_parses_as_on_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """A function's environment keeps nothing between cold starts: the sandbox's watchers
    parse botocore's models as AWS's would (their CPU is what bench/cost.py models)."""
    import botocore.session

    from controller.aws.models import use_model_cache

    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "orders-watcher")
    loader = use_model_cache(botocore.session.Session()).get_component("data_loader")
    assert not isinstance(loader.file_loader, ModelCache)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME")
    loader = use_model_cache(botocore.session.Session()).get_component("data_loader")
    assert isinstance(loader.file_loader, ModelCache)


def test_a_new_copy_removes_its_files_copies_unwritten_for_a_week_only(tmp_path: Path) -> None:
    """An upgraded botocore leaves its predecessor's copies behind: the first parse of a file
    removes that file's copies older than a week, not a recent one (another venv's botocore
    may still read it), nor another file's; and copies older than a week named as before a
    name told its file."""
    cache = ModelCache(tmp_path)
    path = _model("sqs")
    cache.load_file(path)
    (kept,) = tmp_path.iterdir()
    family = kept.name.partition("-")[0]
    week_ago = time.time() - PRUNE_AFTER
    stale, recent = tmp_path / f"{family}-0.marshal", tmp_path / f"{family}-1.marshal"
    other = tmp_path / "0-0.marshal"
    unsorted_old, unsorted_new = tmp_path / f"{'a' * 32}.marshal", tmp_path / f"{'b' * 32}.marshal"
    for copy, age in (
        (stale, week_ago - 60),
        (recent, week_ago + 60),
        (other, week_ago - 60),
        (unsorted_old, week_ago - 60),  # named as before copies told their file
        (unsorted_new, week_ago + 60),
    ):
        copy.write_bytes(kept.read_bytes())
        os.utime(copy, (age, age))
    assert cache.load_file(path) is not None  # read back: nothing written, nothing removed
    assert stale.exists()
    kept.unlink()
    assert cache.load_file(path) == botocore.loaders.JSONFileLoader().load_file(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [kept.name, recent.name, other.name, unsorted_new.name]
    )

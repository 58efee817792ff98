"""Every malformed topology gets exit code 2 and one clear line naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kit.paths import REPO

BAD = REPO / "tests" / "data" / "bad"
CASES = sorted(p for p in BAD.iterdir())


def expected(path: Path) -> str:
    """The message fragment a bad spec declares on its first line (``# expect: ...``)."""
    if path.is_dir():
        return "is a directory"
    raw = path.read_bytes()
    if not raw.startswith(b"# expect:"):
        return "cannot read"
    return raw.decode().splitlines()[0].removeprefix("# expect:").strip()


def test_there_are_at_least_twenty_bad_specs() -> None:
    assert len(CASES) >= 20


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.name)
@pytest.mark.parametrize("verb", [["validate"], ["plan", "--to", "us-west-2"], ["graph"]])
def test_bad_spec_is_one_line_and_exit_2(cli, path: Path, verb: list[str]) -> None:
    result = cli(*verb, "--spec", path)
    assert result.code == 2
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    assert str(path) in lines[0]
    assert expected(path) in lines[0]


def test_missing_file_names_it(cli, tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = cli("validate", "--spec", missing)
    assert result.code == 2
    assert result.err.strip() == f"error: {missing}: file does not exist"


def test_yaml_error_names_the_line(cli) -> None:
    result = cli("validate", "--spec", BAD / "not_yaml.yaml")
    assert "not_yaml.yaml:4:" in result.err


def test_field_error_names_the_line(cli) -> None:
    result = cli("validate", "--spec", BAD / "memory_wrong_type.yaml")
    assert "memory_wrong_type.yaml:7: components.api.memory" in result.err

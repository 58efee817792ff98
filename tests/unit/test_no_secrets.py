"""No credentials in the repository: code, config, docs, examples, tests.

Credentials come from the standard AWS chain only, never from a file of this project. The scan
covers every file git knows (tracked, and new files not ignored), so a key pasted into any file
fails the build before it is committed. The detectors are tested on keys made up at run time,
so this file holds no key-shaped string itself.
"""

from __future__ import annotations

import random
import re
import string
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

ACCESS_KEY_ID = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")
SECRET_ACCESS_KEY = re.compile(
    r"(?i)[a-z_]*secret[a-z_]*"  # aws_secret_access_key, SecretAccessKey, SECRET_KEY, secret
    r"[\"']?\s*[:=]\s*[\"']?"
    r"([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])"
)


def findings(text: str) -> list[tuple[int, str]]:
    """``(line, kind)`` for every access key id or secret access key shaped string."""
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if ACCESS_KEY_ID.search(line):
            out.append((number, "access key id"))
        if SECRET_ACCESS_KEY.search(line):
            out.append((number, "secret access key"))
    return out


def repository_files() -> list[Path]:
    """Every file git tracks, plus new files it does not ignore."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .split("\0")
    )
    return [ROOT / name for name in sorted(set(listed)) if name and (ROOT / name).is_file()]


def scan(paths: list[Path]) -> list[str]:
    """``file:line: kind`` for every finding in text files among ``paths``."""
    out = []
    for path in paths:
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary
        for line, kind in findings(data.decode("utf-8", errors="ignore")):
            out.append(
                f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{line}: {kind}"
            )
    return out


def _made_up(alphabet: str, length: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(length))


UPPER = string.ascii_uppercase + string.digits
B64 = string.ascii_letters + string.digits + "/+"


@pytest.mark.parametrize("prefix", ["AKIA", "ASIA"])
def test_detector_finds_an_access_key_id(prefix: str) -> None:
    key = prefix + _made_up(UPPER, 16, seed=1)
    assert findings(f'client = boto3.client("s3", aws_access_key_id="{key}")') == [
        (1, "access key id")
    ]
    assert findings(f"line one\n{key}\n") == [(2, "access key id")]


@pytest.mark.parametrize(
    "template",
    [
        "aws_secret_access_key = {}",
        'AWS_SECRET_ACCESS_KEY="{}"',
        "secret: {}",
        '"SecretAccessKey": "{}"',
        "export SECRET_KEY={}",
    ],
)
def test_detector_finds_a_secret_access_key(template: str) -> None:
    secret = _made_up(B64, 40, seed=2)
    assert findings(template.format(secret)) == [(1, "secret access key")]


@pytest.mark.parametrize(
    "text",
    [
        "AKIA" + "X" * 15,  # too short to be a key id
        "XAKIA" + "A" * 16 + "B",  # part of a longer token
        "commit " + "0123456789abcdef" * 2 + "01234567",  # a 40-char hash, not a secret
        "secret_name = orders-api-key",  # a name, not a value
        "secret: " + "a" * 41,  # longer than a secret key
    ],
)
def test_detector_ignores_look_alikes(text: str) -> None:
    assert findings(text) == []


def test_scan_reports_file_and_line(tmp_path: Path) -> None:
    leaky = tmp_path / "settings.ini"
    leaky.write_text(
        "[default]\nregion = us-east-1\naws_access_key_id = "
        + "AKIA"
        + _made_up(UPPER, 16, seed=3)
        + "\n",
        encoding="utf-8",
    )
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\0" + ("AKIA" + _made_up(UPPER, 16, seed=4)).encode())
    assert scan([leaky, binary]) == [f"{leaky}:3: access key id"]


def test_repository_holds_no_aws_credentials() -> None:
    files = repository_files()
    names = {p.relative_to(ROOT).as_posix() for p in files}
    assert {"pyproject.toml", "examples/orders/topology.yaml", "Pulumi.yaml"} <= names
    assert scan(files) == []

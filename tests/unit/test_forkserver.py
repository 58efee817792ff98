"""What a caller of the forkserver does when it answers badly (no emulator: a socket plays it)."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.errors import FailoverError
from sandbox import forkserver


@pytest.fixture
def silent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """A forkserver's socket that takes each request and, told by the test, answers it with
    a line, or not at all; the requests it took."""
    monkeypatch.setattr(forkserver, "REQUEST_TIMEOUT", 0.3)
    path = str(tmp_path / "forkserver.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(4)
    taken: list[bytes] = []
    answers: list[bytes] = []
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            taken.append(conn.makefile("rb").readline())
            if answers:
                conn.sendall(answers.pop(0))
            held.append(conn)  # never closed while the test runs: no end of line either

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    monkeypatch.setenv(forkserver.ENV, path)
    yield answers
    listener.close()
    for conn in held:
        conn.close()


def env() -> dict[str, str]:
    """This process's environment: the forkserver the fixture names, in it."""
    return dict(os.environ)


def test_a_forkserver_that_takes_a_watcher_and_never_answers_is_an_error_not_a_second_start(
    silent: list[bytes], tmp_path: Path
) -> None:
    with pytest.raises(FailoverError, match="did not answer"):
        forkserver.spawn_watcher(["us-east-1"], env(), str(tmp_path), tmp_path / "out.log")


def test_a_refusal_or_no_forkserver_leaves_the_start_to_the_caller(
    silent: list[bytes], tmp_path: Path
) -> None:
    silent.append(b'{"error": "not the owner"}\n')
    assert forkserver.spawn_watcher(["us-east-1"], env(), str(tmp_path), tmp_path / "o") is None
    silent.append(b'{"pid": 4242}\n')
    assert forkserver.spawn_watcher(["us-east-1"], env(), str(tmp_path), tmp_path / "o") == 4242
    gone = {k: v for k, v in env().items() if k != forkserver.ENV} | {
        forkserver.ENV: str(tmp_path / "none.sock")
    }
    assert forkserver.spawn_watcher(["us-east-1"], gone, str(tmp_path), tmp_path / "o") is None

"""A deployed stack, kept for the next sandbox started from the same program and topology.

Called by :mod:`sandbox.lifecycle` (``failover sandbox up``). Deploying the example costs about
8 s of CPU: the Pulumi program under the SDK's mocks in this process, and the servers taking
several hundred creates. Every input that shapes what the servers hold afterwards is in the
:func:`key` (the spec and the files beside it, the program's, the sandbox's and the
controller's source, the installed distributions' versions), so a sandbox whose key was
deployed before gets what the servers held right after that deployment
(:mod:`sandbox.snapshot`'s files) instead of running the program again: the same stack, put
back in a fraction of the time. A stack is kept the second time its key is deployed, so that
a topology deployed once (a test's own) neither takes the space nor evicts one in use, or the
first time when another sandbox of the same key waited for it: while one sandbox deploys a key
(:func:`claimed`), another started meanwhile waits for its stack instead of deploying it too
(the test suite's workers start several sandboxes of the example at once).

What differs from one sandbox to the next is the servers' loopback ports, which the deployment
wrote into what it made (queue URLs in a function's environment, the control store's
endpoints, the manifest). They are rewritten (:func:`rebase`) in the snapshots' pickles, which
only stays a valid pickle when each old address is as long as its new one: when one is not,
the sandbox deploys as if nothing were kept.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import json
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from controller.controltable.suspects import suspects_path
from sandbox.state import private_dir

log = logging.getLogger(__name__)

#: How many stacks the cache keeps (the last used; each is the servers' snapshots, ~36 MB for
#: the example), and how many keys it remembers having deployed once.
KEEP, SEEN = 3, 64
#: A spec folder with more files than this is not hashed (its stack is deployed every time).
MAX_FILES = 2000
#: What a stack's folder holds besides each server's snapshot (:func:`snapshot_name`).
SERVERS, STACK, MANIFEST = "servers.json", "stack.json", "manifest.json"
#: The packages whose source shapes a deployment (the program, its mapping onto the emulator,
#: the bundles' controller).
PACKAGES = ("controller", "infra", "sandbox")
#: A server's address as the deployment wrote it.
ADDRESS = re.compile(rb"127\.0\.0\.1:\d{1,5}")
#: Turn the cache off (``FAILOVER_STACK_CACHE=0``): every sandbox runs the program.
SWITCH = "FAILOVER_STACK_CACHE"
#: How long a sandbox waits for another deploying the same key (the example takes about 8 s of
#: CPU; a loaded machine, several times that) before it deploys the key itself; how often it
#: looks whether the other is done.
WAIT, POLL = 120.0, 0.1


@dataclass(frozen=True)
class Kept:
    """A stack's folder in the cache, and the server URLs it was deployed on."""

    folder: Path
    urls: dict[str, str]

    def snapshot(self, server: str) -> Path:
        """The file ``server``'s snapshot was kept in."""
        return self.folder / snapshot_name(server)


def snapshot_name(server: str) -> str:
    """The name ``server``'s snapshot is kept under in a stack's folder."""
    return f"{server}.deployed"


def folder() -> Path:
    """Where stacks are kept: ``stacks`` in the controller's cache (:func:`suspects_path`)."""
    return suspects_path().parent / "stacks"


def key(spec: Path, code: Iterable[Path] = ()) -> str | None:
    """A digest of everything that shapes the stack ``spec`` deploys, its functions' ``code``
    folders included (a spec may name one outside its own folder); None when the cache is off
    or a folder is too large to hash."""
    if os.environ.get(SWITCH, "1") == "0":
        return None
    digest = hashlib.sha256()
    spec = spec.resolve()
    digest.update(str(spec).encode())
    folders = sorted({spec.parent, *(Path(c).resolve() for c in code)})
    files: list[Path] = []
    for folder in folders:
        if any(other in folder.parents for other in folders):
            continue  # hashed with the folder it is in
        found = _files(folder)
        if found is None:
            return None
        files.extend(found)
    for package in PACKAGES:
        root = Path(str(importlib.import_module(package).__file__)).parent
        files.extend(sorted(root.rglob("*.py")))
    for path in files:
        digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    # The emulator's, the SDKs' and the bundles' distributions (a bundle carries some).
    digest.update(json.dumps([sys.version, *_installed()]).encode())
    return digest.hexdigest()[:24]


def find(digest: str) -> Kept | None:
    """The stack kept under ``digest``, or None."""
    where = folder() / digest
    try:
        urls = json.loads((where / SERVERS).read_text(encoding="utf-8"))
        os.utime(where)  # the newest use: the last one evicted
    except (OSError, ValueError):
        return None
    return Kept(where, {str(k): str(v) for k, v in urls.items()})


@contextlib.contextmanager
def claimed(digest: str, wait: float = WAIT) -> Iterator[Kept | None]:
    """Deploy ``digest`` alone: inside, no other sandbox deploys it (it waits), and what is
    yielded is the stack kept under it, if another sandbox kept it while this one waited (or
    before). A sandbox that waits marks the key wanted twice, so the one deploying it keeps its
    stack (:func:`keep`). After ``wait`` seconds a waiter goes on and deploys it too."""
    root = private_dir(folder())
    lock = os.open(root / f".lock-{digest}", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if not _lock(lock, 0.0):
            (root / f".seen-{digest}").touch(mode=0o600)
            log.info("another sandbox deploys stack %s: waiting for it", digest)
            if not _lock(lock, wait):
                log.info("stack %s: waited %.0f s, deploying it too", digest, wait)
        yield find(digest)
    finally:
        os.close(lock)  # and with it the lock


def _lock(fd: int, wait: float) -> bool:
    """Take ``fd``'s exclusive lock within ``wait`` seconds (flock has no timeout: polled)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL)


def keep(digest: str, urls: Mapping[str, str], files: Mapping[str, Path]) -> None:
    """Keep ``files`` (a snapshot per server, the stack and the manifest, by their name in the
    folder) as the stack of ``digest`` deployed on ``urls``, if that key was deployed once
    before or waited for (:func:`claimed`); a stack kept already stays. Never fails the
    sandbox."""
    root = private_dir(folder())
    final = root / digest
    if final.exists():
        return
    seen = root / f".seen-{digest}"
    if not seen.exists():  # deployed once: kept the next time
        seen.touch(mode=0o600)
        _evict(root)
        return
    tmp = root / f".{digest}.{os.getpid()}"
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        private_dir(tmp)
        for name, source in files.items():
            shutil.copyfile(source, tmp / name)
        (tmp / SERVERS).write_text(json.dumps(dict(urls)), encoding="utf-8")
        os.rename(tmp, final)  # another sandbox kept the same stack first: keep its
    except OSError as exc:
        log.info("stack %s not kept: %s", digest, exc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _evict(root)


def rebase(kept: Mapping[str, str], now: Mapping[str, str]) -> Callable[[bytes], bytes] | None:
    """A rewrite of every server address of ``kept`` (server to URL) to the same server's in
    ``now``; None when a server is missing or an address changes length (a pickle's strings
    carry their length)."""
    table: dict[bytes, bytes] = {}
    for name, url in kept.items():
        if name not in now:
            return None
        old, new = _address(url), _address(now[name])
        if len(old) != len(new):
            return None
        table[old] = new

    def rewrite(data: bytes) -> bytes:
        return ADDRESS.sub(lambda m: table.get(m.group(), m.group()), data)

    return rewrite


def _address(url: str) -> bytes:
    """``http://127.0.0.1:4566`` -> ``b"127.0.0.1:4566"``."""
    return url.split("://", 1)[-1].rstrip("/").encode()


def _installed() -> list[str]:
    """Every installed distribution's ``name-version.dist-info`` on the path (a listing, not
    :mod:`importlib.metadata`'s reads: a few milliseconds, not a few hundred)."""
    found: list[str] = []
    for entry in sys.path:
        with contextlib.suppress(OSError):
            found.extend(n for n in os.listdir(entry or ".") if n.endswith(".dist-info"))
    return sorted(found)


def _files(root: Path) -> list[Path] | None:
    """The files under ``root`` but hidden folders and bytecode, sorted; None past
    :data:`MAX_FILES`."""
    found: list[Path] = []
    for here, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        found.extend(Path(here) / n for n in sorted(names) if not n.endswith(".pyc"))
        if len(found) > MAX_FILES:
            return None
    return found


def _evict(root: Path) -> None:
    """Remove all but the :data:`KEEP` last used stacks and the :data:`SEEN` last seen keys."""
    stacks = sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in stacks[KEEP:]:
        shutil.rmtree(old, ignore_errors=True)
    marks = sorted(root.glob(".seen-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    for mark in marks[SEEN:]:
        mark.unlink(missing_ok=True)
    known = {p.name for p in stacks[:KEEP]} | {m.name.removeprefix(".seen-") for m in marks[:SEEN]}
    for lock in root.glob(".lock-*"):
        if lock.name.removeprefix(".lock-") not in known:
            _drop_lock(lock)


def _drop_lock(path: Path) -> None:
    """Remove the lock file ``path`` unless a sandbox holds it (one that opens it meanwhile
    locks a file gone: at worst it deploys a stack another deploys too)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDWR)
        try:
            if _lock(fd, 0.0):
                path.unlink()
        finally:
            os.close(fd)

"""A function's deployed code, unpacked, and the runtime's own packages, laid out once.

Called by :mod:`sandbox.lambda_.invoke`. The zip comes from the emulator (the code
``CreateFunction`` was given, served by the server that holds the function:
:data:`sandbox.controls.CODE_PATH`), is checked against the ``CodeSha256`` the function's
configuration reports, and is unpacked once per digest into a task root, as Lambda unpacks it
into ``/var/task``. The runtime layer is what the Lambda Python runtime itself provides (boto3,
botocore and their dependencies), linked from this environment's installed copies; nothing else
is importable in an execution environment.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import shutil
import tempfile
import threading
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from controller.errors import FailoverError
from sandbox.controls import CODE_PATH, SECRET_HEADER

#: What the Lambda Python runtime ships besides the standard library (and what they need).
RUNTIME_PACKAGES = ("boto3",)

_LOCK = threading.Lock()


def task_root(
    work: Path, url: str, region: str, function: str, qualifier: str, sha256: str, secret: str
) -> Path:
    """The unpacked code of ``function`` (as deployed, digest ``sha256``) under ``work``.

    Raises
    ------
    FailoverError
        The server has no code for it, or its bytes are not what the function reports.
    """
    root = work / "code" / hashlib.sha256(sha256.encode()).hexdigest()[:16]
    with _LOCK:
        if root.is_dir():
            return root
        data = _fetch(url, region, function, qualifier, secret)
        got = base64.b64encode(hashlib.sha256(data).digest()).decode()
        if got != sha256:
            raise FailoverError(
                f"{function} in {region}: the code served is {got}, its configuration says {sha256}"
            )
        with _fresh(root) as folder, zipfile.ZipFile(io.BytesIO(data)) as archive:
            archive.extractall(folder)
        return root


def _fetch(url: str, region: str, function: str, qualifier: str, secret: str) -> bytes:
    path = f"{CODE_PATH}{quote(region)}/{quote(function)}?qualifier={quote(qualifier)}"
    request = urllib.request.Request(url + path, headers={SECRET_HEADER: secret})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30.0) as answer:  # noqa: S310 - loopback
            return bytes(answer.read())
    except urllib.error.HTTPError as exc:
        said = exc.read().decode(errors="replace").strip()[:300]
        raise FailoverError(f"{function} in {region}: its code cannot be read: {said}") from exc
    except OSError as exc:
        raise FailoverError(f"{function} in {region}: its code cannot be read: {exc}") from exc


def runtime_layer(work: Path) -> Path:
    """A folder holding (as links) exactly the runtime's own packages, made once."""
    layer = work / "runtime"
    with _LOCK:
        if layer.is_dir():
            return layer
        with _fresh(layer) as folder:
            for top, source in _runtime_tops():
                (folder / top).symlink_to(source)
        return layer


@contextlib.contextmanager
def _fresh(target: Path) -> Iterator[Path]:
    """A folder to fill that becomes ``target`` whole, or not at all: other processes (each
    region's watcher) lay out the same code at the same time, and none may import a half."""
    target.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        yield folder
        try:
            os.rename(folder, target)
        except OSError:  # another process made it first: theirs is the same
            if not target.is_dir():
                raise
    finally:
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)


def _runtime_tops() -> list[tuple[str, Path]]:
    """Each top-level module or package the runtime's distributions install, and where."""
    from infra.bundle import closure

    out: dict[str, Path] = {}
    for dist in closure(RUNTIME_PACKAGES, exclude=frozenset()):
        for entry in dist.files or ():
            top = Path(str(entry)).parts[0]
            if top.startswith("..") or top.endswith((".dist-info", ".pth")) or top in out:
                continue
            out[top] = Path(str(dist.locate_file(top)))
    return sorted(out.items())

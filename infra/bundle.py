"""A Lambda deployment bundle: a code folder plus its run-time dependencies, as one zip.

Used by :func:`infra.program.deploy` for each function's code folder (its ``requirements.txt``
names what the code imports), and by :mod:`infra.watchers` for the controller's own bundle
(the ``controller`` package and its run-time requirements) the watchers run from. Dependencies
come from the distributions installed in the current environment (``importlib.metadata``: each
requirement, its transitive requirements, each distribution's RECORD files), so the bundle
ships exactly the versions the tests ran against. What the Lambda Python runtime already
provides (boto3 and its dependencies) is left out.

Given the function's :class:`~infra.target.Target` (its runtime and architecture), markers are
evaluated for it, and a distribution whose installed wheel does not run there (compiled for this
machine's Python, OS or processor) is fetched for it with pip (:func:`fetch`: the same version,
the target's manylinux wheel, cached by target and versions): only then does a bundle built on
macOS, on arm64 or with another Python run in the function. Without a target, the installed
files are copied as they are, for this machine's platform.

The zip is reproducible (sorted entries, fixed timestamps and modes): the same inputs give the
same bytes, so Pulumi sees no change to deploy when nothing changed.

It carries each module's bytecode when it is built for this machine's Python (no target, or a
target of the same version): Lambda's ``/var/task`` is read-only, so a bundle without it
compiles every module it imports at every cold start (the watcher's handler: 0.67-0.82 s of CPU
against 0.19-0.21 s with it, measured at a full core). The bytecode is hash-checked (PEP 552):
it records no time, so it is as reproducible as the rest, and Python checks it against its
source at import.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata as metadata
import importlib.util
import io
import json
import marshal
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import cast

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from infra.target import Target

#: What the Lambda Python runtime ships; bundling them again only adds megabytes.
RUNTIME_PROVIDED = frozenset(
    canonicalize_name(n)
    for n in ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six")
)
#: The file in a code folder that names the distributions its code imports.
REQUIREMENTS_FILE = "requirements.txt"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
_SKIPPED_PARTS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache"})
#: A distribution's own test suite, which its wheel may ship (networkx's: 9 MB unpacked with
#: its bytecode) and nothing imports at run time.
_TEST_PARTS = frozenset({"tests", "test"})
#: The file a finished fetch leaves in its cache folder: what it holds (target and versions).
STAMP = ".fetched.json"
#: A hash-based pyc that Python checks against its source at import (PEP 552's flags).
_CHECKED_HASH = (0b11).to_bytes(4, "little")
#: Runs ``pip`` with these arguments; raises :class:`BundleError` when pip fails.
Pip = Callable[[list[str]], None]


class BundleError(ValueError):
    """A requirement that is not installed here, or a code folder that does not exist."""


@dataclass(frozen=True)
class Bundle:
    """A built bundle: where the zip is, its size, and the distributions it carries."""

    path: Path
    size: int
    distributions: tuple[str, ...]
    #: what it was built for (None: this machine's platform)
    target: Target | None = None
    #: the distributions fetched for the target, not copied from this environment
    fetched: tuple[str, ...] = ()


def requirement_names(folder: Path) -> list[str]:
    """The requirements (name and extras, no versions needed) a code folder's file lists."""
    path = folder / REQUIREMENTS_FILE
    if not path.is_file():
        return []
    out = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            out.append(line)
    return out


def closure(
    requirements: Iterable[str],
    exclude: frozenset[str] = RUNTIME_PROVIDED,
    target: Target | None = None,
) -> list[metadata.Distribution]:
    """The installed distributions ``requirements`` need, transitively, minus ``exclude``.

    Extras (``aws-lambda-powertools[tracer]``) are followed; environment markers are evaluated
    for ``target`` (this interpreter without one). A requirement that is not installed raises
    :class:`BundleError`.
    """
    environment = (
        target.environment()
        if target is not None
        else cast("dict[str, str]", dict(default_environment()))
    )
    found: dict[str, metadata.Distribution] = {}
    pending: list[tuple[str, frozenset[str]]] = []
    for text in requirements:
        req = _parse(text)
        pending.append((req.name, frozenset(req.extras)))
    seen: set[tuple[str, frozenset[str]]] = set()
    while pending:
        name, extras = pending.pop()
        key = canonicalize_name(name)
        if key in exclude or (key, extras) in seen:
            continue
        seen.add((key, extras))
        try:
            dist = found.get(key) or metadata.distribution(name)
        except metadata.PackageNotFoundError as exc:
            raise BundleError(
                f"requirement {name!r} is not installed in this environment "
                "(install it, then build the bundle again)"
            ) from exc
        found[key] = dist
        for text in dist.requires or ():
            req = _parse(text)
            if req.marker is None or any(
                req.marker.evaluate({**environment, "extra": extra}) for extra in (extras or {""})
            ):
                pending.append((req.name, frozenset(req.extras)))
    return [found[k] for k in sorted(found)]


def _parse(text: str) -> Requirement:
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        raise BundleError(f"not a requirement: {text!r}") from exc


def wheel_tags(dist: metadata.Distribution) -> list[str]:
    """The tags of the wheel ``dist`` was installed from (its ``WHEEL`` file); none if unknown."""
    text = dist.read_text("WHEEL") or ""
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Tag:")]


def run_pip(args: list[str]) -> None:
    """``python -m pip ARGS`` with this environment's pip and its index settings."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", *args],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BundleError(f"pip did not run: {exc}") from exc
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise BundleError(f"pip failed: {lines[-1].strip() if lines else done.returncode}")


def fetch(
    target: Target, dists: Sequence[metadata.Distribution], cache: Path, pip: Pip = run_pip
) -> list[metadata.Distribution]:
    """The target's wheels of ``dists`` (same names and versions), installed under ``cache``.

    One folder per target and set of versions, kept once complete (its :data:`STAMP` written
    last, the folder renamed into place), so a bundle is fetched once per change of either.

    Raises
    ------
    BundleError
        pip failed (no wheel of that version for the target, no index reachable), or did not
        install one of them.
    """
    pins = sorted(f"{d.metadata['Name']}=={d.version}" for d in dists)
    stamp = {"runtime": target.runtime, "architecture": target.architecture.value, "pins": pins}
    text = json.dumps(stamp, sort_keys=True)
    folder = cache / f"{target.slug}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"
    if not (folder / STAMP).is_file():
        cache.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f"{folder.name}.", dir=cache))
        try:
            pip(target.pip_arguments(scratch, pins))
            (scratch / STAMP).write_text(text, encoding="utf-8")
            os.replace(scratch, folder)
        except BundleError as exc:
            raise BundleError(f"fetching {', '.join(pins)} for {target.slug}: {exc}") from exc
        except OSError:
            if not (folder / STAMP).is_file():  # not another build finishing the same fetch
                raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    got = {
        canonicalize_name(d.metadata["Name"]): d for d in metadata.distributions(path=[str(folder)])
    }
    missing = [p for p in pins if canonicalize_name(p.split("==")[0]) not in got]
    if missing:
        raise BundleError(f"pip installed no {', '.join(missing)} for {target.slug} in {folder}")
    return [got[canonicalize_name(d.metadata["Name"])] for d in dists]


def _distribution_files(dist: metadata.Distribution) -> Iterator[tuple[str, Path]]:
    """``(path in the zip, file on disk)`` for each installed file of ``dist`` (its RECORD)."""
    for entry in dist.files or ():
        parts = PurePosixPath(str(entry)).parts
        folders = (_SKIPPED_PARTS | _TEST_PARTS) & set(parts[:-1])
        if not parts or parts[0] == ".." or folders or entry.suffix == ".pyc":
            continue  # scripts installed outside site-packages, caches, the dist's own tests
        source = Path(str(dist.locate_file(entry)))
        if source.is_file():
            yield str(PurePosixPath(*parts)), source


def _folder_files(folder: Path, prefix: str = "") -> Iterator[tuple[str, Path]]:
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not _SKIPPED_PARTS & set(rel.parts) and path.suffix != ".pyc":
            yield str(PurePosixPath(prefix, *rel.parts)) if prefix else rel.as_posix(), path


def build(
    out: Path,
    *,
    code: Path | None = None,
    packages: Sequence[Path] = (),
    requirements: Sequence[str] = (),
    exclude: frozenset[str] = RUNTIME_PROVIDED,
    target: Target | None = None,
    pip: Pip = run_pip,
) -> Bundle:
    """Write a reproducible zip to ``out`` and describe it.

    Parameters
    ----------
    out : the zip file to write (its folder is created).
    code : a folder whose contents go at the zip's root (a function's code folder).
    packages : package folders that go into the zip under their own name (``controller/``).
    requirements : requirement strings; they and their transitive requirements are bundled
        from the installed distributions, except ``exclude``.
    target : the runtime and architecture the bundle runs on; a distribution whose installed
        wheel does not run there is fetched for it (:func:`fetch`, cached beside ``out``).
    """
    entries: dict[str, Path] = {}
    if code is not None:
        if not code.is_dir():
            raise BundleError(f"code folder {code} does not exist")
        entries.update(_folder_files(code))
    for package in packages:
        entries.update(_folder_files(package, package.name))
    dists = closure(requirements, exclude, target)
    foreign = [d for d in dists if target is not None and not target.runs(wheel_tags(d))]
    shipped = [d for d in dists if d not in foreign]
    if target is not None and foreign:
        shipped += fetch(target, foreign, out.parent / "wheels", pip)
    for dist in shipped:
        for name, source in _distribution_files(dist):
            entries.setdefault(name, source)  # the code's own files win
    names = tuple(str(d.metadata["Name"]) for d in dists)
    fetched = tuple(str(d.metadata["Name"]) for d in foreign)
    compiled = target is None or target.python == sys.version_info[:2]
    stamp = _stamp(entries, sys.implementation.cache_tag if compiled else "")
    kept = out.with_name(out.name + ".stamp")
    if out.is_file() and kept.is_file() and kept.read_text(encoding="utf-8") == stamp:
        return Bundle(
            path=out,
            size=out.stat().st_size,
            distributions=names,
            target=target,
            fetched=fetched,
        )
    files = {name: source.read_bytes() for name, source in entries.items()}
    if compiled:
        files.update(bytecode(files))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[name])
    data = buffer.getvalue()
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.is_file() or out.read_bytes() != data:  # leave an identical file untouched
        _replace(out, data)
    _replace(kept, stamp.encode())
    return Bundle(path=out, size=len(data), distributions=names, target=target, fetched=fetched)


def bytecode(files: dict[str, bytes]) -> dict[str, bytes]:
    """The bytecode of each module in ``files`` (path in the zip to source), for this Python,
    at the path its import looks for it (``pkg/__pycache__/mod.cpython-311.pyc``).

    A module this Python cannot compile (a file of another Python's syntax, shipped but never
    imported) is left without: its import, if any, fails as it would have.
    """
    out = {}
    for name, source in files.items():
        if name.endswith(".py") and (compiled := _compiled(name, source)) is not None:
            out[importlib.util.cache_from_source(name)] = compiled
    return out


@functools.lru_cache(maxsize=8192)
def _compiled(name: str, source: bytes) -> bytes | None:
    """A checked hash-based pyc of ``source``; its code names the module by its path in the
    zip, never this machine's (Python names it by where it is found, at import).

    Cached: the program builds the same modules into several bundles (two seconds of CPU for
    the watcher's 1,400 modules)."""
    try:
        code = compile(source, name, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return None
    header = importlib.util.MAGIC_NUMBER + _CHECKED_HASH + importlib.util.source_hash(source)
    return header + marshal.dumps(code)


def _stamp(entries: dict[str, Path], compiled_for: str) -> str:
    """What a bundle is made of: each entry's name, size and time of change, and the Python its
    bytecode is for ("" when none). The zip of the same stamp is the same (it is reproducible),
    so a bundle whose stamp has not changed is not made again (compiling and zipping the
    watcher's takes 1.4 s of CPU)."""
    listed = [f"bytecode\0{compiled_for}"]
    for name in sorted(entries):
        stat = entries[name].stat()
        listed.append(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(listed).encode()).hexdigest()


def _replace(path: Path, data: bytes) -> None:
    """Write ``path`` whole, through a file of this process's own (several processes may build
    the same bundle at once)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def function_bundle(code: Path, out_dir: Path) -> Bundle:
    """The bundle of one function code folder: its files and its ``requirements.txt``."""
    digest = hashlib.sha256(str(code.resolve()).encode()).hexdigest()[:10]
    slug = re.sub(r"[^A-Za-z0-9_.-]", "-", code.name) or "code"
    return build(out_dir / f"{slug}-{digest}.zip", code=code, requirements=requirement_names(code))

"""A moto server's whole state, kept in its own memory and put back in a few milliseconds.

Run inside the sandbox's servers only (:mod:`sandbox.launcher` routes
``POST /_failover/snapshot`` and ``POST /_failover/restore`` here). Resetting a sandbox between
tests empties every server and puts back what the program deployed (about 5 ms), instead of
deploying again. A server keeps its copy in memory, and writes it to a file when asked: a server
restarted since (a region killed and healed) reads it from there, so that a region comes back
from an outage with what it held, as an AWS region does.

The copy is a pickle of every backend moto has created, with moto's id generator's state, taken
in one pass so that objects shared between services (a mapping's queue) stay shared. In memory,
what is immutable and costly to copy (a function's code, megabytes; ACM's keys, slow to parse)
is kept by reference; the file's copy holds everything. moto's
models are plain objects, with five exceptions handled here: ACM's keys and certificates (kept
as PEM), locks (made anew), a ``defaultdict``'s local factory (kept as the empty value it makes,
copied on each call: moto's make empty containers), ``defaultdict`` subclasses whose
``__init__`` takes other arguments than a factory (SSM's ``ParameterDict``), and weak-valued
dictionaries (copied as such). The backend dictionaries themselves (``sqs_backends``, ...) are
module globals that moto's responses look up on every request: they are named by their module
and service, found again in the process that restores (the same one or a new one) and filled
again, never replaced.
"""

from __future__ import annotations

import collections
import copy
import importlib
import io
import os
import pickle
import threading
import types
import weakref
from dataclasses import dataclass
from typing import Any

_LOCKS = (type(threading.Lock()), type(threading.RLock()))


#: A ``bytes`` at least this long (a function's code) is shared, not copied, by an in-memory copy.
LARGE = 64 * 1024


@dataclass(frozen=True)
class Snapshot:
    """What :func:`take` kept: the pickled backends (with moto's random state: the ids moto
    makes next are the same after every restore), and the objects it kept by reference
    (immutable ones: a function's code, ACM's keys, which take most of a restore to copy or
    to parse again). A copy with nothing kept by reference is bytes only: any server process can
    read it from a file."""

    data: bytes
    kept: tuple[Any, ...] = ()


def take(*, whole: bool = False) -> Snapshot:
    """A copy of every backend moto holds now (see the module's docstring); ``whole``: with
    nothing kept by reference (for a file)."""
    from moto.core.base_backend import BackendDict, backend_lock
    from moto.moto_api._internal import mock_random

    with backend_lock:
        dicts = list(BackendDict._instances)  # type: ignore[misc]
        buffer = io.BytesIO()
        pickler = _Pickler(buffer, dicts, whole=whole)
        # The backend dictionaries first, by name, so that the restore knows which global each
        # list of accounts fills.
        pickler.dump((dicts, [dict(backends) for backends in dicts], mock_random.getstate()))
        return Snapshot(buffer.getvalue(), tuple(pickler.kept))


def restore(snapshot: Snapshot) -> None:
    """Forget every backend, as moto's reset does, and put back those of ``snapshot``."""
    from moto.core.base_backend import BackendDict, backend_lock
    from moto.moto_api._internal import mock_random

    BackendDict.reset()
    with backend_lock:
        unpickler = _Unpickler(io.BytesIO(snapshot.data), snapshot.kept)
        dicts, contents, random_state = unpickler.load()
        for backends, accounts in zip(dicts, contents, strict=True):
            backends.update(accounts)
            if backends not in BackendDict._instances:  # type: ignore[misc]
                BackendDict._instances.append(backends)  # type: ignore[misc]
        mock_random.setstate(random_state)


def write(copy: Snapshot, path: str) -> None:
    """Write ``copy`` (a ``whole`` one) to ``path`` (0600, atomically): a restarted server
    reads it back."""
    if copy.kept:
        raise ValueError("a copy that keeps objects by reference cannot be written")
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(copy.data)
    os.replace(tmp, path)


def read(path: str) -> Snapshot:
    """The copy :func:`write` wrote to ``path``."""
    with open(path, "rb") as source:
        return Snapshot(source.read())


def _name(backends: Any) -> tuple[str, str, str]:
    """A backend dictionary by its module, its backend class and its service."""
    cls = backends.backend
    return (str(cls.__module__), str(cls.__qualname__), str(backends.service_name))


def _named(module: str, qualname: str, service: str) -> Any:
    """The backend dictionary of this process that :func:`_name` names."""
    from moto.core.base_backend import BackendDict

    candidates = [*vars(importlib.import_module(module)).values(), *BackendDict._instances]  # type: ignore[misc]
    for found in candidates:
        if isinstance(found, BackendDict) and _name(found) == (module, qualname, service):
            return found
    raise pickle.UnpicklingError(f"no backend dictionary {service} ({module}.{qualname}) here")


class _Pickler(pickle.Pickler):
    """Pickles moto's backends; see the module's docstring for what it names or replaces."""

    def __init__(self, file: io.BytesIO, dicts: list[Any], *, whole: bool = False) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._dicts = {id(d): _name(d) for d in dicts}
        self._whole = whole
        self.kept: list[Any] = []
        self._kept: dict[int, int] = {}

    def persistent_id(self, obj: Any) -> tuple[str, ...] | None:
        named = self._dicts.get(id(obj))
        if named is not None:
            return named
        if self._whole or not (
            (isinstance(obj, bytes) and len(obj) >= LARGE)
            or type(obj).__module__.startswith("cryptography.")
        ):
            return None
        if id(obj) not in self._kept:
            self._kept[id(obj)] = len(self.kept)
            self.kept.append(obj)
        return ("kept", str(self._kept[id(obj)]))

    def reducer_override(self, obj: Any) -> Any:
        if type(obj).__module__.startswith("cryptography."):
            return _crypto(obj)
        if isinstance(obj, _LOCKS):
            return (threading.RLock if isinstance(obj, _LOCKS[1]) else threading.Lock, ())
        if isinstance(obj, weakref.WeakValueDictionary):
            return (weakref.WeakValueDictionary, (), None, None, iter(list(obj.items())))
        if isinstance(obj, types.FunctionType) and (
            "<locals>" in obj.__qualname__ or obj.__name__ == "<lambda>"
        ):
            return (Empty, (_empty(obj),))
        if isinstance(obj, collections.defaultdict) and type(obj) is not collections.defaultdict:
            return (
                _defaultdict,
                (type(obj), obj.default_factory),
                vars(obj) or None,
                None,
                iter(list(obj.items())),
            )
        return NotImplemented


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, kept: tuple[Any, ...] = ()) -> None:
        super().__init__(file)
        self.kept = kept

    def persistent_load(self, pid: Any) -> Any:
        if pid[0] == "kept":
            return self.kept[int(pid[1])]
        return _named(*pid)


class Empty:
    """A ``defaultdict``'s factory that makes a copy of an empty value: what moto's local
    factories (``lambda: {}``, ``lambda: defaultdict(dict)``) make, without the function."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __call__(self) -> Any:
        return copy.deepcopy(self.value)


def _empty(factory: Any) -> Any:
    """What ``factory`` makes, when it is an empty container (else it cannot be kept)."""
    value = factory()
    if not isinstance(value, (dict, list, set)) or len(value):
        raise pickle.PicklingError(
            f"{factory.__qualname__} makes {value!r}: not an empty container"
        )
    return value


def _crypto(obj: Any) -> Any:
    """A key or certificate of ``cryptography`` (ACM's), as the PEM that makes it again."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    if isinstance(obj, x509.Certificate):
        return (_certificate, (obj.public_bytes(serialization.Encoding.PEM),))
    pem = obj.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return (_private_key, (pem,))


def _certificate(pem: bytes) -> Any:
    from cryptography import x509

    return x509.load_pem_x509_certificate(pem)


def _private_key(pem: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization

    # a key this module wrote from a valid one: its (slow) RSA checks are skipped
    return serialization.load_pem_private_key(pem, None, unsafe_skip_rsa_key_validation=True)


def _defaultdict(cls: type[collections.defaultdict[Any, Any]], factory: Any) -> Any:
    """An empty ``cls`` with ``factory``, without calling ``cls.__init__``."""
    made = cls.__new__(cls)
    made.default_factory = factory
    return made

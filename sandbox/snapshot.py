"""A moto server's whole state, kept in its own memory and put back in a few milliseconds.

Run inside the sandbox's servers only (:mod:`sandbox.launcher` routes
``POST /_failover/snapshot`` and ``POST /_failover/restore`` here). Resetting a sandbox between
tests used to empty every server with moto's reset and provision the example again: 234 calls,
about 1 s of CPU between the servers and the client. A server now keeps a copy of what ``up``
provisioned and restores it instead (about 5 ms), as long as it is the same process that took it:
a restarted server has none, and the sandbox provisions it in full (:meth:`Sandbox.reset`).

The copy is a pickle of every backend moto has created, with moto's id generator's state, taken
in one pass so that objects shared between services (a mapping's queue) stay shared. moto's
models are plain objects, with four exceptions handled here: locks (made anew), local functions
such as a ``defaultdict``'s factory (kept by reference: they hold no state of their own),
``defaultdict`` subclasses whose ``__init__`` takes other arguments than a factory (SSM's
``ParameterDict``), and weak-valued dictionaries (copied as such). The backend dictionaries
themselves (``sqs_backends``, ...) are module globals that moto's responses look up on every
request: they are kept by reference and filled again, never replaced.
"""

from __future__ import annotations

import collections
import io
import pickle
import threading
import types
import weakref
from dataclasses import dataclass
from typing import Any

_LOCKS = (type(threading.Lock()), type(threading.RLock()))


@dataclass(frozen=True)
class Snapshot:
    """What :func:`take` kept: the pickled backends, what it pickled by reference, and moto's
    random state (the ids moto makes next are the same after every restore)."""

    data: bytes
    kept: tuple[Any, ...]
    random_state: Any


def take() -> Snapshot:
    """A copy of every backend moto holds now (see the module's docstring)."""
    from moto.core.base_backend import BackendDict, backend_lock
    from moto.moto_api._internal import mock_random

    with backend_lock:
        dicts = list(BackendDict._instances)  # type: ignore[misc]
        buffer = io.BytesIO()
        pickler = _Pickler(buffer, dicts)
        # The backend dictionaries first, by reference, so that the restore knows which global
        # each list of accounts fills.
        pickler.dump((dicts, [dict(backends) for backends in dicts]))
        return Snapshot(buffer.getvalue(), tuple(pickler.kept), mock_random.getstate())


def restore(snapshot: Snapshot) -> None:
    """Forget every backend, as moto's reset does, and put back those of ``snapshot``."""
    from moto.core.base_backend import BackendDict, backend_lock
    from moto.moto_api._internal import mock_random

    BackendDict.reset()
    with backend_lock:
        unpickler = _Unpickler(io.BytesIO(snapshot.data), snapshot.kept)
        dicts, contents = unpickler.load()
        for backends, accounts in zip(dicts, contents, strict=True):
            backends.update(accounts)
            if backends not in BackendDict._instances:  # type: ignore[misc]
                BackendDict._instances.append(backends)  # type: ignore[misc]
        mock_random.setstate(snapshot.random_state)


class _Pickler(pickle.Pickler):
    """Pickles moto's backends; see the module's docstring for what it keeps by reference."""

    def __init__(self, file: io.BytesIO, dicts: list[Any]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.kept: list[Any] = list(dicts)
        self._index = {id(d): i for i, d in enumerate(dicts)}

    def persistent_id(self, obj: Any) -> int | None:
        if id(obj) in self._index:
            return self._index[id(obj)]
        if isinstance(obj, types.FunctionType) and (
            "<locals>" in obj.__qualname__ or obj.__name__ == "<lambda>"
        ):
            self.kept.append(obj)
            self._index[id(obj)] = len(self.kept) - 1
            return len(self.kept) - 1
        return None

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, _LOCKS):
            return (threading.RLock if isinstance(obj, _LOCKS[1]) else threading.Lock, ())
        if isinstance(obj, weakref.WeakValueDictionary):
            return (weakref.WeakValueDictionary, (), None, None, iter(list(obj.items())))
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
    def __init__(self, file: io.BytesIO, kept: tuple[Any, ...]) -> None:
        super().__init__(file)
        self.kept = kept

    def persistent_load(self, pid: Any) -> Any:
        return self.kept[pid]


def _defaultdict(cls: type[collections.defaultdict[Any, Any]], factory: Any) -> Any:
    """An empty ``cls`` with ``factory``, without calling ``cls.__init__``."""
    made = cls.__new__(cls)
    made.default_factory = factory
    return made

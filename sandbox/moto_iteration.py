"""moto's backends, iterated safely while other requests add to them.

A sandbox server answers requests in threads, and moto's backends are not written for that: a
backend keeps its resources in plain dictionaries and many calls walk one in Python (IAM's
``CreateRole`` and ``GetRole`` look for the name among every role, CloudWatch's
``DescribeAlarms`` among every alarm). A request that adds a resource while another walks the
dictionary ends the walk with ``RuntimeError: dictionary changed size during iteration``, which
the server answers as a 500 that AWS never gives for it: a fresh clone's ``sandbox up`` failed on
``DescribeAlarms`` while the deployment's workers created the region's other alarms.

Here every dictionary a backend holds as an attribute walks a copy of itself, listed in C and
listed again in the rare case an insertion got in; looking up, adding and removing stay as they
were. The resources' own dictionaries (a table's items) are not changed.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, KeysView, ValuesView
from typing import Any, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Walked(dict[K, V]):
    """A dictionary whose iteration and views are over a copy taken in one step, so that a walk
    never sees another thread's insertion (and never fails on it)."""

    def _copy(self) -> dict[K, V]:
        # dict's own items, listed in C (not dict.copy: on a subclass that defines __iter__ it
        # copies through keys(), i.e. through this class again). Listing holds the interpreter's
        # lock unless Python code runs meanwhile (a finaliser, a gc callback), which can let an
        # insertion in: then the listing fails at once and is taken again.
        while True:
            try:
                return dict(list(dict.items(self)))
            except RuntimeError:
                continue

    def __iter__(self) -> Iterator[K]:
        return iter(self._copy())

    def keys(self) -> KeysView[K]:  # type: ignore[override]
        return self._copy().keys()

    def values(self) -> ValuesView[V]:  # type: ignore[override]
        return self._copy().values()

    def items(self) -> ItemsView[K, V]:  # type: ignore[override]
        return self._copy().items()


def _walked_attributes(setattr_: Any) -> Any:
    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(value) is dict and not name.startswith("__"):
            value = Walked(value)
        setattr_(self, name, value)

    __setattr__._failover_walked = True  # type: ignore[attr-defined]
    return __setattr__


def backends_walk_copies() -> None:
    """Make every dictionary a moto backend is given from now on a :class:`Walked` one (the
    backends made afterwards, and every backend again on a reset, which makes it anew)."""
    from moto.core.base_backend import BaseBackend

    if getattr(BaseBackend.__setattr__, "_failover_walked", False):
        return
    BaseBackend.__setattr__ = _walked_attributes(BaseBackend.__setattr__)  # type: ignore[method-assign]

"""What the sandbox changes in moto, inside its own server processes only.

Called by :mod:`controller.sandbox.launcher` before it forks the servers. moto "runs" an enabled
event source mapping itself: on every ``SendMessage`` or table write it invokes the function
(without Docker, a stub that always succeeds) and then deletes the queue's messages and empties
the table's stream shard. The sandbox runs the handlers itself, in-process, by polling the
queues and reading the streams (``dynamodbstreams``) as Lambda would, so moto must leave them
alone: mappings still exist, are enabled and disabled through the Lambda API and are listed as
usual, but are never attached to their queue, table or stream inside moto.
"""

from __future__ import annotations

import functools
from typing import Any

#: The moto classes that keep their own copy of the mappings attached to them.
ATTACHED = (
    ("moto.sqs.models", "Queue"),
    ("moto.dynamodb.models.table", "Table"),
    ("moto.kinesis.models", "Stream"),
)


class InertMappings(dict[str, Any]):
    """A mapping table that forgets what is put in it: moto never sees a mapping to invoke."""

    def __setitem__(self, key: str, value: Any) -> None:
        return None


def detach_event_sources() -> None:
    """Make every queue, table and stream moto creates from now on ignore its mappings."""
    import importlib

    for module_name, class_name in ATTACHED:
        cls = getattr(importlib.import_module(module_name), class_name)
        if getattr(cls.__init__, "_failover_detached", False):
            continue
        cls.__init__ = _detached(cls.__init__)


def _detached(init: Any) -> Any:
    @functools.wraps(init)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.lambda_event_source_mappings = InertMappings()

    wrapper._failover_detached = True  # type: ignore[attr-defined]
    return wrapper

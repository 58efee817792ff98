"""CloudWatch alarms of a component in a region: read-only, for ``health`` and the watcher.

An alarm in ``ALARM`` makes its component unhealthy; ``INSUFFICIENT_DATA`` says nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from controller.aws import Clients, classify

ALARM = "ALARM"
#: describe_alarms takes at most this many names per call.
PAGE = 100


def alarm_states(clients: Clients, region: str, names: Sequence[str]) -> dict[str, str]:
    """The state of each named alarm in ``region`` (an alarm that does not exist is absent).

    Raises a transient or permanent step error (``classify``) when the region does not answer.
    """
    if not names:
        return {}
    cloudwatch: Any = clients.client("cloudwatch", region)
    states: dict[str, str] = {}
    try:
        for start in range(0, len(names), PAGE):
            page = cloudwatch.describe_alarms(AlarmNames=list(names[start : start + PAGE]))
            for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
                states[alarm["AlarmName"]] = alarm["StateValue"]
    except Exception as exc:
        raise classify(exc, component="alarms", region=region) from exc
    return states


def firing(states: dict[str, str]) -> list[str]:
    """The names of the alarms in ``ALARM``, sorted.

    >>> firing({"b": "ALARM", "a": "OK", "c": "ALARM"})
    ['b', 'c']
    """
    return sorted(name for name, state in states.items() if state == ALARM)

"""What a deployed watcher tells CloudWatch after every evaluation: one JSON log line and one
embedded-metric-format record, both on stdout (Lambda sends stdout to the function's log group).

Called by the Lambda entry point (:mod:`controller.watchers.lambda_entry`). The ``Evaluations``
metric is what the dead-man alarm ``infra`` deploys watches (:data:`controller.contract.
WATCHER_METRIC`); a watcher that could not reach the control table counts as no evaluation.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from controller import clock, contract
from controller.watchers.decisions import WatchAction

#: The dimensions of the ``Evaluations`` metric (the dead-man alarm's, ``infra/watchers.py``).
METRIC_DIMENSIONS = ("App", "Region")


def log_line(region: str, owner: str, decision: dict[str, Any]) -> str:
    """One evaluation as one structured JSON log line (CloudWatch Logs Insights reads it)."""
    return json.dumps(
        {
            "level": "INFO",
            "logger": "failover.watcher",
            "message": "evaluation",
            "watcher_region": region,
            "owner": owner,
            **decision,
        },
        sort_keys=True,
        default=str,
    )


def metric_record(app: str, region: str, action: WatchAction, consecutive_bad: int = 0) -> str:
    """One embedded-metric-format record: CloudWatch turns it into metrics, no API call made.

    One metric only, ``Evaluations`` per (App, Region), the one the dead-man alarm watches: each
    metric (name and dimension set) costs $0.30 a month in each region that emits it, and the
    three metrics in two dimension sets this record declared before cost $5.40 a month for the
    example's three regions (``bench/cost.py``). ``Acted`` and ``ConsecutiveBad`` stay in the
    record as fields, which CloudWatch Logs Insights reads; a watcher that could not reach the
    control table counts as no evaluation.
    """
    return json.dumps(
        {
            "_aws": {
                "Timestamp": int(clock.now() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": contract.WATCHER_NAMESPACE,
                        "Dimensions": [list(METRIC_DIMENSIONS)],
                        "Metrics": [{"Name": contract.WATCHER_METRIC, "Unit": "Count"}],
                    }
                ],
            },
            "App": app,
            "Region": region,
            contract.WATCHER_METRIC: int(action.evaluated),
            "Acted": int(action.acted),
            "ConsecutiveBad": consecutive_bad,
            "action": action,
        }
    )


def to_stdout(line: str) -> None:
    """Lambda sends stdout to the function's log group, one record per line."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()

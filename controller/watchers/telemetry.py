"""What a deployed watcher tells CloudWatch after every evaluation: one JSON log line and one
embedded-metric-format record, both on stdout (Lambda sends stdout to the function's log group).

Called by the Lambda entry point (:mod:`controller.watchers.lambda_entry`). The ``Evaluations``
metric is what the dead-man alarm ``infra`` deploys watches (:data:`controller.contract.
WATCHER_METRIC`); a watcher that could not reach the control table counts as no evaluation.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from controller import contract
from controller.isolation import CUT_OFF, SELF_FENCE

#: Decisions that changed something (counted in the ``Acted`` metric).
ACTED = frozenset({"failover", "failback", "reconcile", SELF_FENCE})
#: Decisions that are no evaluation of the application (the dead-man alarm counts silence).
NOT_EVALUATED = frozenset({CUT_OFF, "error", SELF_FENCE})


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


def metric_record(app: str, region: str, action: str, consecutive_bad: int = 0) -> str:
    """One embedded-metric-format record: CloudWatch turns it into metrics, no API call made.

    ``Evaluations`` is published per (App) and per (App, Region): the dead-man alarm sums the
    first; a watcher that could not reach the control table counts as no evaluation.
    """
    evaluated = 0 if action in NOT_EVALUATED else 1
    return json.dumps(
        {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": contract.WATCHER_NAMESPACE,
                        "Dimensions": [["App"], ["App", "Region"]],
                        "Metrics": [
                            {"Name": contract.WATCHER_METRIC, "Unit": "Count"},
                            {"Name": "Acted", "Unit": "Count"},
                            {"Name": "ConsecutiveBad", "Unit": "Count"},
                        ],
                    }
                ],
            },
            "App": app,
            "Region": region,
            contract.WATCHER_METRIC: evaluated,
            "Acted": int(action in ACTED),
            "ConsecutiveBad": consecutive_bad,
            "action": action,
        }
    )


def to_stdout(line: str) -> None:
    """Lambda sends stdout to the function's log group, one record per line."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()

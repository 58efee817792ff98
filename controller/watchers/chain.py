"""The chain: a watcher that must evaluate again in an interval asks its queue, and ends.

Called by the deployed watcher (:mod:`controller.watchers.lambda_entry`). A Lambda function is
billed for every second it lives, sleeping included, and EventBridge invokes at most once a
minute: the sentinel's sleep between its six evaluations a minute was most of the watchers' bill
(``bench/cost.py``). Instead, after an evaluation it saved, a watcher that must evaluate again
this interval (the sentinel, a vigilant one: :mod:`controller.watchers.cadence`) sends one message
to its region's chain queue, delayed by what is left of the interval (``DelaySeconds``, whole
seconds, at most 900), and ends; the queue's event source mapping invokes the function again
with it: the next **link**. A link carries the count of evaluations its sender saved in the
watcher's item of the control table (:mod:`controller.controltable.watchstate`), which is the
chain's token:

- a **duplicated** message (SQS delivers at least once): the copy that comes second finds the
  count moved on and ends without evaluating; two copies at once both evaluate, but the item's
  write is conditional on the count, so only one saves, and only one sends the next link;
- a **late** message, or one of an older chain: the count moved on (the scheduled invocation
  evaluated meanwhile, and went on with a link of its own): it ends without evaluating;
- a **lost** message (or a link that failed, or a region whose queue does not answer): the chain
  ends; the next scheduled invocation (every minute) evaluates and starts it again. Detection
  waits at most that minute once; the dead-man alarm counts the evaluations either way.

A link also carries when its evaluation is due (AWS epoch seconds): the chain keeps the
interval's rate, not the interval after each link's delivery. Each link is delivered a little
late (``DelaySeconds`` rounded up to whole seconds, the event source mapping's poll, the new
invocation's start), and an invocation that waited a whole interval after its own start added
that lateness to every period (11.2-12 s for a 10 s interval in the sandbox at k = 5): three bad
evaluations took three periods' worth of it. The next link is due an interval after this one
was due, so a late link asks for the next one sooner; one later than an interval evaluates at
once and the chain's rate starts again from there.

A watcher whose evaluation was not saved (the control table out of reach) sends no link: it
keeps evaluating inside its invocation, sleeping, as before (:mod:`controller.watchers.isolation`
counts how long it is cut off there).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from controller import clock
from controller.aws import Clients, classify
from controller.errors import FailoverError

log = logging.getLogger(__name__)

#: SQS's longest message delay.
MAX_DELAY_SECONDS = 900
#: What a link's message body says: the region whose watcher sent it, and the count it saved.
KIND = "failover-watcher-link"

#: ``send(after, delay)``: sends the link that invokes this watcher again in ``delay`` seconds,
#: ``after`` its saved evaluations.
Send = Callable[[int, float], None]


@dataclass(frozen=True)
class Link:
    """One link of a watcher's chain: its region, the evaluations saved before it was sent, and
    when its evaluation is due (AWS epoch seconds; None in a link sent before links said)."""

    region: str
    after: int
    due: float | None = None

    def body(self) -> str:
        """The message body.

        >>> Link("us-west-2", 12, due=1700000010.25).body()[:40]
        '{"after": 12, "due": 1700000010.25, "kin'
        >>> Link("us-west-2", 12).body()
        '{"after": 12, "kind": "failover-watcher-link", "region": "us-west-2"}'
        """
        body: dict[str, object] = {"after": self.after, "kind": KIND, "region": self.region}
        if self.due is not None:
            body["due"] = round(self.due, 3)
        return json.dumps(body, sort_keys=True)

    def late(self, now: float) -> float:
        """Seconds this link's evaluation starts after it was due (0 when it says no due, or
        a clock's skew makes it look early): the next link is asked that much sooner.

        >>> Link("r", 1, due=97.5).late(100.0), Link("r", 1, due=101.0).late(100.0)
        (2.5, 0.0)
        >>> Link("r", 1).late(100.0)
        0.0
        """
        return 0.0 if self.due is None else max(0.0, now - self.due)


def delay_seconds(wait: float) -> int:
    """``DelaySeconds`` for a link due in ``wait`` seconds: whole seconds, rounded up (never
    sooner than the interval), within SQS's bounds.

    >>> delay_seconds(8.2), delay_seconds(0.0), delay_seconds(-1.0), delay_seconds(4000.0)
    (9, 0, 0, 900)
    """
    return min(MAX_DELAY_SECONDS, max(0, math.ceil(wait)))


def link_of(event: Mapping[str, Any], region: str) -> Link | None:
    """The link an invocation's ``event`` carries (an SQS event of one record whose body is one
    of ``region``'s links), None for any other event (the schedule's).

    >>> record = {"eventSource": "aws:sqs", "body": Link("us-west-2", 3).body()}
    >>> link_of({"Records": [record]}, "us-west-2")
    Link(region='us-west-2', after=3, due=None)
    >>> link_of({"source": "aws.events"}, "us-west-2") is None
    True
    >>> link_of({"Records": [record]}, "eu-west-1") is None  # another region's: not ours
    True
    """
    records = event.get("Records")
    if not isinstance(records, list) or not records:
        return None
    for record in records:
        if not isinstance(record, Mapping) or record.get("eventSource") != "aws:sqs":
            continue
        try:
            body = json.loads(str(record.get("body") or ""))
        except ValueError:
            continue
        if isinstance(body, dict) and body.get("kind") == KIND and body.get("region") == region:
            due = body.get("due")
            return Link(
                region,
                int(body.get("after") or 0),
                float(due) if isinstance(due, (int, float)) else None,
            )
    return None


def sender(clients: Clients, region: str, queue_url: str) -> Send:
    """``send(after, delay)`` on ``region``'s chain queue at ``queue_url``.

    Raises (from ``send``) a step error (``classify``) when the queue does not take it.
    """

    def send(after: int, delay: float) -> None:
        sqs: Any = clients.client("sqs", region)
        try:
            sqs.send_message(
                QueueUrl=queue_url,
                MessageBody=Link(region, after, due=clock.now() + delay).body(),
                DelaySeconds=delay_seconds(delay),
            )
        except Exception as exc:
            raise classify(exc, component="watcher chain", region=region) from exc

    return send


def superseded(link: Link | None, saved: int) -> bool:
    """True when ``link`` is not the next of its watcher's chain (``saved``: the evaluations its
    item holds): a duplicated or late link, or one of a chain the schedule started again.

    >>> superseded(Link("r", 4), 4), superseded(Link("r", 4), 5), superseded(None, 5)
    (False, True, False)
    """
    if link is None or link.after == saved:
        return False
    log.info("watcher %s: link after %d dropped (%d saved)", link.region, link.after, saved)
    return True


def running(updated: float | None, within: float) -> bool:
    """True when the watcher's last evaluation (saved at ``updated``) was ``within`` seconds
    ago: its chain runs, and its next link is on its way (the schedule's invocation leaves it
    alone); an older one is a broken chain, which that invocation starts again."""
    return updated is not None and clock.now() - updated < within


def ask(send: Send, region: str, after: int, wait: float) -> bool:
    """Send the next link, due in ``wait`` seconds; False when the queue did not take it (the
    invocation then keeps evaluating by itself, sleeping, as without a chain)."""
    try:
        send(after, wait)
    except FailoverError as exc:
        log.warning("watcher %s: cannot send its next link: %s", region, exc)
        return False
    return True

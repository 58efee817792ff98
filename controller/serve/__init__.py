"""``failover serve``: a live status page of the incident and the JSON API behind it.

Called by the CLI (``failover serve``) and the demo. :mod:`~controller.serve.sources` reads what
``status`` and ``runs`` read, cached; :mod:`~controller.serve.api` routes requests to it;
:mod:`~controller.serve.server` answers HTTP on the loopback; ``static/`` is the page (HTML,
vanilla JavaScript, CSS: no build step, nothing fetched from elsewhere).
"""

from controller.serve.api import Api, Response
from controller.serve.server import StatusServer
from controller.serve.snapshot import Cached, Snapshot
from controller.serve.sources import DecisionSource, Sources, TrafficSource, deployment_sources

__all__ = [
    "Api",
    "Cached",
    "DecisionSource",
    "Response",
    "Snapshot",
    "Sources",
    "StatusServer",
    "TrafficSource",
    "deployment_sources",
    "serve",
]


def serve(
    sources: Sources,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    allowed_hosts: tuple[str, ...] = (),
) -> StatusServer:
    """A started server of ``sources`` (read-only unless ``token`` is given)."""
    return StatusServer(Api(sources, token=token), host, port, allowed_hosts).start()

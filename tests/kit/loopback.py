"""A handler of a test's own, served on 127.0.0.1 at a free port for the length of a block."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler

from sandbox.router import LoopbackService


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler], name: str = "test-http") -> Iterator[str]:
    """Serve ``handler`` (as the sandbox serves its own: :class:`~sandbox.router.LoopbackService`,
    a thread per request) and yield its URL; stopped and closed when the block ends."""
    service = LoopbackService(handler, name)
    service.start()
    try:
        yield service.url
    finally:
        service.stop()

"""Where log records go: ``--log-json``'s JSON lines, and a file while a live display runs."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class JsonFormatter(logging.Formatter):
    """One JSON object per log line: time, level, logger, message and any extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        extra = getattr(record, "event", None)
        if isinstance(extra, dict):
            out.update(extra)
        return json.dumps(out, default=str)


@contextmanager
def to_file(path: Path) -> Iterator[Path]:
    """Send the log records to ``path`` instead of the terminal while the block runs.

    For long verbs with a live display (``failover demo``): dozens of expected warnings (a
    hung region's read timeouts) would scroll the display away; the file keeps them all, in
    the format the terminal had (JSON lines stay JSON lines).
    """
    root = logging.getLogger()
    previous = list(root.handlers)
    json_lines = any(isinstance(h.formatter, JsonFormatter) for h in previous)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.touch(mode=0o600)
    os.chmod(path, 0o600)  # its owner's only, whatever the umask, as the sandbox's state is
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root.handlers = [handler]
    try:
        yield path
    finally:
        root.handlers = previous
        handler.close()

"""Multi-region failover control plane for serverless applications on AWS.

Its modules log through ``logging.getLogger(__name__)``; where the records go is the caller's
choice (the CLI's ``configure_logging``, the watcher's JSON lines). No handler is added here, not
even a ``NullHandler``: importing :mod:`logging` only for it cost ``failover --help`` a tenth of
its start-up, and without it an embedder that configures nothing still sees the warnings on
stderr (Python's last-resort handler), which a control plane should not swallow.
"""

__version__ = "0.1.0"

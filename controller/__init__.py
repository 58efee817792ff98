"""Multi-region failover control plane for serverless applications on AWS."""

import logging

logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"

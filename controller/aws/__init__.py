"""AWS access: the one place that makes AWS clients (:mod:`~controller.aws.clients`), and the
one reading of their errors (:mod:`~controller.aws.errors`).

Called by the actions, the health reads and the control table; above the topology model, below
everything that acts. Its names are re-exported here (``from controller.aws import Clients``).
"""

from controller.aws.clients import (
    EMULATOR_KEY,
    GLOBAL_SERVICES,
    NO_PROXY,
    AwsSettings,
    Clients,
    Hook,
    close_connections,
    emulator_session,
)
from controller.aws.errors import (
    DENIED_CODES,
    NOT_FOUND_CODES,
    TRANSIENT_CODES,
    Decoded,
    classify,
    decode,
    error_code,
    explain,
    is_not_found,
    is_unreachable,
)

__all__ = [
    "DENIED_CODES",
    "EMULATOR_KEY",
    "GLOBAL_SERVICES",
    "NOT_FOUND_CODES",
    "NO_PROXY",
    "TRANSIENT_CODES",
    "AwsSettings",
    "Clients",
    "Decoded",
    "Hook",
    "classify",
    "close_connections",
    "decode",
    "emulator_session",
    "error_code",
    "explain",
    "is_not_found",
    "is_unreachable",
]

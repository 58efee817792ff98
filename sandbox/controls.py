"""The names the sandbox's servers and their callers agree on for the sandbox's own controls.

Imported by :mod:`sandbox.launcher` (which checks the secret on every control request),
:mod:`sandbox.mrsc` (whose pings and configuration carry it), :mod:`sandbox.servers` (which
sends it) and :mod:`sandbox.lambda_.code` (which downloads a function's zip): one module below
them all, standard library only, so that neither server module imports the other for a name.
"""

from __future__ import annotations

#: Every path under this prefix is one of the sandbox's controls, never an AWS API.
PREFIX = "/_failover/"
#: ``GET`` here, then ``<region>/<function>?qualifier=Q``: a function's deployed zip.
CODE_PATH = f"{PREFIX}lambda-code/"
#: ``POST`` here with ``evaluate=0|1&ahead=S``: the server's alarm evaluator
#: (:mod:`sandbox.cloudwatch.evaluator`), on or off, its clock ``S`` seconds ahead.
ALARMS_PATH = f"{PREFIX}alarms"
#: The environment variable that gives the launcher the sandbox's secret.
SECRET_ENV = "FAILOVER_SANDBOX_SECRET"  # noqa: S105 - the name of a variable
#: The request header that must carry it on the sandbox's controls.
SECRET_HEADER = "X-Failover-Sandbox-Secret"  # noqa: S105 - the name of a header

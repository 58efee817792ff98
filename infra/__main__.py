"""The Pulumi program's entry point: read the stack config, deploy the topology, export it.

``pulumi up`` runs this file (``Pulumi.yaml`` main: ``infra/``). Config keys (namespace
``failover``): ``topology`` (a topology file; default the example application),
``logRetentionDays``, ``jwtIssuer``, ``jwtAudience`` (list), ``secret-<component>`` (a secret:
the value of a secure parameter; unset, the value is managed out of band), ``controllerPrincipals``
and ``deployerPrincipals`` (lists of IAM ARNs allowed to assume those roles; unset, the role is not
created: the account root is never trusted),
``zoneIds`` (hosted zone ids by zone name; default: the account's public zone of that name,
looked up), ``protectData`` (deletion protection on tables, replicas and the control table;
default on).
"""

from __future__ import annotations

from pathlib import Path

import pulumi

from controller.topology import EXAMPLE_SPEC, Kind, SpecError, load
from infra.common import PROJECT_ROOT, Settings
from infra.program import deploy

config = pulumi.Config("failover")
spec_path = Path(config.get("topology") or EXAMPLE_SPEC)
if not spec_path.is_absolute():
    spec_path = PROJECT_ROOT / spec_path
try:
    topology = load(spec_path)
except SpecError as exc:  # one line, as `failover validate` says it, not a stack trace
    raise pulumi.RunError(str(exc)) from exc
secure = [name for name, spec in topology.of_kind(Kind.PARAMETER) if spec.secure]
settings = Settings(
    spec_path=str(spec_path),
    stack=pulumi.get_stack(),
    log_retention_days=config.get_int("logRetentionDays") or 30,
    jwt_issuer=config.get("jwtIssuer"),
    jwt_audience=tuple(config.get_object("jwtAudience") or ()),
    secrets={n: v for n in secure if (v := config.get_secret(f"secret-{n}")) is not None},
    controller_principals=tuple(config.get_object("controllerPrincipals") or ()),
    deployer_principals=tuple(config.get_object("deployerPrincipals") or ()),
    zone_ids=config.get_object("zoneIds") or {},
    protect_data=config.get_bool("protectData") is not False,
)
pulumi.export("manifest", deploy(topology, settings))

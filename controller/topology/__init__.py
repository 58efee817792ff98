"""The topology model: what ``topology.yaml`` describes, and the deployed manifest.

The bottom part of the controller: it imports nothing of the other parts (only the shared names
of :mod:`controller.contract` and the errors). ``infra`` may import it, and nothing else of the
controller but :mod:`controller.contract`. Its general names are re-exported here, so that
callers write ``from controller.topology import Topology, load``; each kind's model
(``FunctionSpec``, ``ApiSpec``, ...) is imported from :mod:`controller.topology.kinds`, and the
manifest from :mod:`controller.topology.manifest` (a plan needs no manifest).
"""

from controller.topology.kinds import (
    DEFAULT_TIER,
    EXAMPLE_SPEC,
    KINDS,
    NAME_PATTERN,
    Component,
    Control,
    Declared,
    Kind,
    OnFailure,
    Policy,
    Regions,
    SpecError,
    TargetLost,
    Tier,
    Topology,
    declared,
    default_spec_path,
    load,
    loads,
    resolve,
)

__all__ = [
    "DEFAULT_TIER",
    "EXAMPLE_SPEC",
    "KINDS",
    "NAME_PATTERN",
    "Component",
    "Control",
    "Declared",
    "Kind",
    "OnFailure",
    "Policy",
    "Regions",
    "SpecError",
    "TargetLost",
    "Tier",
    "Topology",
    "declared",
    "default_spec_path",
    "load",
    "loads",
    "resolve",
]

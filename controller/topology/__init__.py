"""The topology model: what ``topology.yaml`` describes, and the deployed manifest.

Four modules with four reasons to change: :mod:`~controller.topology.kinds` (each kind's model
and the registry of kinds, whose entries are :mod:`~controller.topology.registry`'s
``Declared``), :mod:`~controller.topology.schema` (regions, control, policy, the whole
topology), :mod:`~controller.topology.naming` (the physical names) and
:mod:`~controller.topology.loading` (reading a file, and saying in one line what is wrong with
it); beside them the AWS region sets (:mod:`~controller.topology.regions`) and the deployed
manifest (:mod:`~controller.topology.manifest`).

The bottom part of the controller: it imports nothing of the other parts (only the shared names
of :mod:`controller.contract` and the errors). ``infra`` may import it, and nothing else of the
controller but :mod:`controller.contract`. Its general names are re-exported here, so that
callers write ``from controller.topology import Topology, load``; each kind's model
(``FunctionSpec``, ``ApiSpec``, ...) is imported from :mod:`controller.topology.kinds`, and the
manifest from :mod:`controller.topology.manifest` (a plan needs no manifest).
"""

from controller.errors import SpecError
from controller.topology.kinds import KINDS, NAME_PATTERN, Component, Kind, OnFailure, declared
from controller.topology.loading import EXAMPLE_SPEC, default_spec_path, load, loads
from controller.topology.registry import Declared, Tier, resolve
from controller.topology.schema import Control, Policy, Regions, TargetLost, Topology

__all__ = [
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

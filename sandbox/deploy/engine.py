"""Run the Pulumi program against the emulator: Pulumi's engine-less mode, its mocks as AWS.

Called by :mod:`sandbox.lifecycle` (``failover sandbox up``). :func:`deploy` runs
:func:`infra.program.deploy`, the function ``infra/__main__.py`` calls, under
``pulumi.runtime.set_mocks``: the SDK registers every resource with :class:`EmulatorMocks`, whose
``new_resource`` creates it (:mod:`sandbox.deploy.mapping`) in the server its provider's
endpoints name and answers with what the emulator answered, and whose ``call`` answers the
program's invokes from the emulator too. The program's ``manifest`` output is the sandbox's
manifest.

The stack config is the sandbox's (:func:`sandbox_settings`): the emulator's endpoints, a JWT
issuer nobody can reach, the sandbox's operator as the principal of the controller and deployer
roles, no deletion protection (the sandbox is thrown away).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import botocore.exceptions
import pulumi
import pulumi.runtime

from controller.controltable.suspects import suspects_path
from controller.errors import FailoverError
from controller.topology import Topology
from controller.topology.manifest import Manifest
from infra import aws
from infra.common import Settings
from infra.program import build_bundles
from infra.program import deploy as deploy_program
from infra.watchers import watcher_bundle
from sandbox.deploy import mapping
from sandbox.deploy.at import ACCOUNT, MODULE, At, Clients, InvokeFailedError, RefusedError
from sandbox.state import write_private

log = logging.getLogger(__name__)

PROVIDER = "pulumi:providers:aws"
#: Resources being created at once (each mostly waits for a server's answer).
WORKERS = 16
STACK = "sandbox"
#: Who may assume the controller and deployer roles the program creates in the sandbox.
OPERATOR = f"arn:aws:iam::{ACCOUNT}:role/sandbox-operator"
#: A JWT issuer for the routes that need one: the sandbox's API checks no token.
JWT_ISSUER = "https://auth.sandbox.invalid/"


@dataclass(frozen=True)
class Provider:
    """A provider the program declared: its region and where it sends each service's calls."""

    region: str
    endpoints: Mapping[str, str]


@dataclass(frozen=True)
class Made:
    """One resource the program created in the emulator: what it asked and what it got."""

    typ: str
    name: str
    region: str
    id: str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any]


@dataclass
class EmulatorMocks(pulumi.runtime.Mocks):
    """Pulumi's resource monitor, whose every resource is created in the emulator.

    ``regions``: every server's URL by region, for what AWS does across regions on its own.
    """

    regions: Mapping[str, str]
    made: list[Made] = field(default_factory=list)
    #: What was refused, first first: the run stops at the first and says it in one line.
    refused: list[FailoverError] = field(default_factory=list)
    _providers: dict[str, Provider] = field(default_factory=dict)
    _clients: Clients = field(default_factory=Clients)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        """Create one resource in the emulator; its id and state (inputs and outputs)."""
        if args.typ == PROVIDER:
            return self._provider(args)
        if not args.custom:  # a component: nothing exists in AWS
            return f"{args.name}-component", {}
        provider = self._provider_of(args.typ, args.name, args.provider or "")
        at = At(
            args.typ, args.name, provider.region, provider.endpoints, self.regions, self._clients
        )
        began = time.monotonic()
        try:
            rid, outputs = mapping.create(at, args.inputs)
            log.debug("%s %s: %.3f s", args.typ, args.name, time.monotonic() - began)
        except RefusedError as exc:
            self._refuse(exc)
            raise
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            self._refuse(FailoverError(f"{args.typ} {args.name}: the emulator refused: {exc}"))
            raise
        state = {**args.inputs, **outputs}
        plain = mapping.plain(dict(args.inputs))  # the stack file is the sandbox owner's (0600)
        with self._lock:
            self.made.append(Made(args.typ, args.name, at.region, rid, plain, mapping.plain(state)))
        return rid, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
        """Answer an invoke from the emulator: what failed as the provider's would fail is the
        invoke's failure (the program may expect it); what the mapping refuses stops the run."""
        provider = self._provider_of(args.token, "invoke", args.provider or "")
        at = At(
            args.token, "invoke", provider.region, provider.endpoints, self.regions, self._clients
        )
        try:
            return mapping.invoke(at, args.args)
        except InvokeFailedError as exc:
            return {}, [("", str(exc))]
        except RefusedError as exc:
            self._refuse(exc)
            return {}, [("", str(exc))]

    def _provider(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        at = At(args.typ, args.name, str(inputs.get("region", "")), {})
        for key in inputs:
            if key not in mapping.PROVIDER_INPUTS:
                self._refuse(at.refuse(f"input {key!r} is not mapped to the emulator"))
                raise self.refused[-1]
        endpoints: Any = inputs.get("endpoints") or []
        if isinstance(endpoints, str):  # a provider's object settings come JSON-encoded
            endpoints = json.loads(endpoints)
        merged = {
            ("lambda_" if k == "lambda" else k): str(v)
            for entry in endpoints
            for k, v in entry.items()
            if v
        }
        rid = f"{args.name}-provider"
        with self._lock:
            self._providers[rid] = Provider(at.region, merged)
        return rid, inputs

    def _provider_of(self, typ: str, name: str, reference: str) -> Provider:
        rid = reference.split("::")[-1]
        with self._lock:
            found = self._providers.get(rid)
        if found is None:
            exc = RefusedError(
                f"{typ} {name}: created without an explicit provider: the sandbox knows no "
                f"emulator for it ({MODULE})"
            )
            self._refuse(exc)
            raise exc
        return found

    def _refuse(self, exc: FailoverError) -> None:
        with self._lock:
            self.refused.append(exc)


def bundle_dir(topology: Topology) -> Path:
    """Where the sandbox's program writes the bundles of ``topology``: the user's cache (beside
    the controller's), one folder per topology (a watcher's bundle carries its topology), so
    that a bundle whose files have not changed is not zipped again (:func:`infra.bundle.build`)
    and two sandboxes of different topologies never share one."""
    digest = hashlib.sha256(topology.model_dump_json().encode()).hexdigest()[:12]
    return suspects_path().parent / "bundles" / f"{topology.app}-{digest}"


def prepare(topology: Topology) -> None:
    """What the program's run will need, ahead of it (while the servers start): pulumi-aws's
    modules, and the bundles it deploys."""
    for name in aws.__all__:
        _run_lazy(getattr(aws, name))
    settings = Settings(bundle_dir=bundle_dir(topology))
    build_bundles(topology.for_stack(settings.stack), settings)
    watcher_bundle(topology.for_stack(settings.stack), settings.bundle_dir)


def _run_lazy(imported: object) -> None:
    """Run a pulumi-aws module imported lazily, now: pulumi-aws defers each service's module
    to its first attribute read (CloudWatch's alone is about 0.1 s of CPU), and
    ``import_module`` reads none."""
    if isinstance(imported, ModuleType):
        getattr(imported, "_run_now", None)


def sandbox_settings(
    topology: Topology, endpoints: Mapping[str, str], spec_path: str = ""
) -> Settings:
    """The sandbox stack's config: ``endpoints`` (every region's server and ``global``)."""
    return Settings(
        spec_path=spec_path,
        bundle_dir=bundle_dir(topology),
        jwt_issuer=JWT_ISSUER,
        jwt_audience=(topology.app,),
        controller_principals=(OPERATOR,),
        deployer_principals=(OPERATOR,),
        protect_data=False,
        log_retention_days=14,
        endpoints=dict(endpoints),
    )


@dataclass(frozen=True)
class Deployed:
    """What a run made: the program's manifest output and every resource."""

    manifest: Manifest
    made: tuple[Made, ...]
    seconds: float

    def save(self, path: Path) -> None:
        """Write every resource (type, name, region, id, inputs, outputs) as JSON: the sandbox's
        stack state, as ``pulumi stack export`` would show it (an archive as its path)."""
        rows = [
            {
                "type": m.typ,
                "name": m.name,
                "region": m.region,
                "id": m.id,
                "inputs": _jsonable(m.inputs),
                "outputs": _jsonable(m.outputs),
            }
            for m in self.made
        ]
        write_private(path, json.dumps(rows, indent=1, sort_keys=True))


def load_stack(path: Path) -> list[Made]:
    """The resources :meth:`Deployed.save` wrote."""
    rows = json.loads(path.read_text(encoding="utf-8"))
    return [
        Made(r["type"], r["name"], r["region"], r["id"], r["inputs"], r["outputs"]) for r in rows
    ]


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    path = getattr(value, "path", None)  # a pulumi.FileArchive or FileAsset
    return {"archive": str(path)} if path is not None else repr(value)


def deploy(topology: Topology, settings: Settings) -> Deployed:
    """Run the program for ``topology`` against the emulator ``settings.endpoints`` names.

    Raises
    ------
    FailoverError
        The mapping refused a type or an input, or the emulator refused a call: the first
        one, in one line. What was created before it stays (the sandbox is then stopped).
    """
    started = time.monotonic()
    regions = {k: v for k, v in settings.endpoints.items()}
    mocks = EmulatorMocks(regions)
    loop = asyncio.new_event_loop()  # pulumi registers each resource in the loop's executor:
    # more threads than its default (the cores plus four) keep the servers busy while each waits
    loop.set_default_executor(ThreadPoolExecutor(WORKERS, thread_name_prefix="deploy"))
    asyncio.set_event_loop(loop)
    pulumi.runtime.set_mocks(mocks, project="failover", stack=STACK, preview=False)
    captured: dict[str, Any] = {}

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> pulumi.Output[None]:
        return deploy_program(topology, settings).apply(captured.update)

    try:
        program()
    except Exception as exc:
        if mocks.refused:
            raise mocks.refused[0] from None
        raise FailoverError(f"the Pulumi program failed: {str(exc).splitlines()[0]}") from exc
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    if mocks.refused:
        raise mocks.refused[0]
    manifest = Manifest.model_validate(captured)
    seconds = time.monotonic() - started
    log.info("deployed %d resources in %.2f s", len(mocks.made), seconds)
    return Deployed(manifest, tuple(mocks.made), seconds)

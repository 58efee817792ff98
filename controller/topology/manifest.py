"""The manifest: the physical resources of a deployed topology, region by region.

The Pulumi stack exports it as its ``manifest`` output; the sandbox writes the same shape to
``.failover/manifest.json``. The controller reads it to find every real resource and, against the
emulator, the endpoint of every region.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from controller.contract import DEFAULT_MANIFEST, GLOBAL, is_loopback
from controller.errors import SpecError

if TYPE_CHECKING:
    from controller.topology.schema import Topology


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ComponentRef(_Model):
    """One component's physical resource in one region."""

    kind: str
    name: str
    arn: str = ""
    alias: str | None = None
    role_arn: str | None = None
    mappings: list[str] = Field(default_factory=list)
    queue_url: str | None = None
    dlq_arn: str | None = None
    stream_arn: str | None = None
    endpoint: str | None = None
    health_check_id: str | None = None
    set_identifier: str | None = None
    alarms: list[str] = Field(default_factory=list)
    mode_parameter: str | None = None


class WatcherRef(_Model):
    """The region's watcher: its function and where it logs."""

    function: str
    log_group: str  # the CloudWatch log group (``aws logs tail <log_group> --follow``)
    log_file: str | None = None  # the sandbox's: the file its watcher process writes


class RegionManifest(_Model):
    """Everything deployed in one region."""

    mode_parameter: str
    api_endpoint: str = ""
    alarm_topic: str | None = None  # the SNS topic the region's alarms notify (AWS only)
    watcher: WatcherRef | None = None
    components: dict[str, ComponentRef]


class DnsManifest(_Model):
    """The global traffic pieces: the hosted zone, the record and each region's health check."""

    zone_id: str
    zone: str
    record: str
    health_checks: dict[str, str] = Field(default_factory=dict)


class ControlManifest(_Model):
    """Where the journal and the lease live (a global table: any region can serve it)."""

    table: str
    regions: list[str]


class ClockManifest(_Model):
    """A sandbox's clock: AWS time = origin + scale * (wall - origin) (see
    :mod:`controller.clock`); a stack exported from AWS has none (the real clock)."""

    origin: float
    scale: float = Field(gt=0)


class Manifest(_Model):
    """A deployed topology: the shape both the Pulumi stack and the sandbox produce."""

    app: str
    primary: str
    spec: str = ""
    control: ControlManifest
    dns: DnsManifest | None = None
    regions: dict[str, RegionManifest]
    endpoints: dict[str, str] = Field(
        default_factory=dict,
        description="service endpoint per region (and 'global'); empty on real AWS",
    )
    clock: ClockManifest | None = None

    def ref(self, component: str, region: str) -> ComponentRef:
        """The physical resource of ``component`` in ``region``.

        Raises
        ------
        SpecError
            The manifest does not name it.
        """
        try:
            return self.regions[region].components[component]
        except KeyError:
            raise SpecError(
                f"manifest has no component {component!r} in region {region!r}",
                source="manifest",
            ) from None

    def save(self, path: str | Path) -> None:
        """Write the manifest as JSON, atomically, readable by its owner only (0600)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # whatever the umask
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            os.fchmod(out.fileno(), 0o600)
            out.write(self.model_dump_json(indent=2, exclude_none=True))
        tmp.replace(path)


def load_manifest(path: str | Path = DEFAULT_MANIFEST) -> Manifest:
    """Read a manifest written by the sandbox or exported from the Pulumi stack.

    Raises
    ------
    SpecError
        The file is missing or is not a manifest; the message says how to get one.
    """
    path = Path(path)
    if not path.exists():
        raise SpecError(
            "no manifest: start the sandbox (failover sandbox up) or export the stack's "
            "'manifest' output (pulumi stack output manifest --json > FILE)",
            source=str(path),
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "manifest" in data and "app" not in data:
            data = data["manifest"]
        return Manifest.model_validate(data)
    except json.JSONDecodeError as exc:
        raise SpecError(f"not valid JSON: {exc.msg}", source=str(path), line=exc.lineno) from exc
    except RecursionError:
        raise SpecError(
            "not valid JSON: exceeded maximum nesting depth", source=str(path)
        ) from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"not UTF-8 text: {exc.reason}", source=str(path)) from None
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise SpecError(err["msg"], source=str(path), field=field) from None


def check_deployment(manifest: Manifest, topology: Topology, *, source: str = "manifest") -> None:
    """Refuse a manifest that does not describe the topology it is used with.

    Checked before anything acts, so that a wrong or damaged manifest changes nothing: the same
    app, primary and regions as the topology; every component the manifest names in one region
    named in every region; and, when any region has an endpoint (the sandbox), every region and
    ``global`` with one, on loopback: a sandbox's call never reaches AWS.

    Raises
    ------
    SpecError
        One line naming the manifest's field that disagrees (exit 2).

    Examples
    --------
    >>> from controller.topology import loads
    >>> t = loads("{app: b, regions: {primary: us-east-1, standby: [us-west-2]}, "
    ...           "components: {q: {kind: queue}}}")
    >>> m = Manifest(app="a", primary="us-east-1", control={"table": "t", "regions": ["r1"]},
    ...              regions={"us-east-1": {"mode_parameter": "p", "components": {}}})
    >>> check_deployment(m, t)
    Traceback (most recent call last):
    ...
    controller.errors.SpecError: manifest: app: is 'a', the topology's is 'b'
    """
    app, primary, wanted = topology.app, topology.regions.primary, list(topology.regions.all)
    if manifest.app != app:
        raise SpecError(
            f"is {manifest.app!r}, the topology's is {app!r}", source=source, field="app"
        )
    if manifest.primary != primary:
        raise SpecError(
            f"is {manifest.primary!r}, the topology's is {primary!r}",
            source=source,
            field="primary",
        )
    for region in wanted:
        if region not in manifest.regions:
            raise SpecError(
                f"the topology's region {region!r} is missing",
                source=source,
                field=f"regions.{region}",
            )
    for region in manifest.regions:
        if region not in wanted:
            raise SpecError(
                f"{region!r} is not a region of the topology ({', '.join(wanted)})",
                source=source,
                field=f"regions.{region}",
            )
    known = set(topology.components)
    named = {name for part in manifest.regions.values() for name in part.components}
    for region, part in manifest.regions.items():
        for name in sorted(named - set(part.components)):
            raise SpecError(
                f"{name!r} is missing here but present in another region",
                source=source,
                field=f"regions.{region}.components.{name}",
            )
        for name in sorted(set(part.components) - known):
            raise SpecError(
                f"{name!r} is not a component of the topology",
                source=source,
                field=f"regions.{region}.components.{name}",
            )
    if manifest.clock is not None and not manifest.endpoints:
        raise SpecError(
            "a scaled clock is a sandbox's: a manifest of AWS runs on the real clock",
            source=source,
            field="clock",
        )
    if manifest.endpoints:
        for name in (*wanted, GLOBAL):
            url = manifest.endpoints.get(name)
            if not url:
                raise SpecError(
                    "missing: a sandbox manifest names every region's emulator "
                    "(and 'global'), and no call of it may reach AWS",
                    source=source,
                    field=f"endpoints.{name}",
                )
            if not is_loopback(url):
                raise SpecError(
                    f"{url} is not on loopback", source=source, field=f"endpoints.{name}"
                )


def check_steps(
    manifest: Manifest, steps: Iterable[tuple[str, str]], source: str = "manifest"
) -> None:
    """Refuse a plan one of whose ``(component, region)`` steps the manifest does not name.

    Raises
    ------
    SpecError
        The first missing one, as the manifest's field (exit 2).
    """
    for component, region in steps:
        part = manifest.regions.get(region)
        if part is None or component not in part.components:
            raise SpecError(
                f"the plan acts on {component!r} in {region!r}, which the manifest does not name",
                source=source,
                field=f"regions.{region}.components.{component}",
            )

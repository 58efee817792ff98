"""The manifest: the physical resources of a deployed topology, region by region.

The Pulumi stack exports it as its ``manifest`` output; the sandbox writes the same shape to
``.failover/manifest.json``. The controller reads it to find every real resource and, against the
emulator, the endpoint of every region.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from controller.contract import DEFAULT_MANIFEST
from controller.errors import SpecError


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


class RegionManifest(_Model):
    """Everything deployed in one region."""

    mode_parameter: str
    api_endpoint: str = ""
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
        """Write the manifest as JSON, atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.model_dump_json(indent=2, exclude_none=True), encoding="utf-8")
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
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise SpecError(err["msg"], source=str(path), field=field) from None

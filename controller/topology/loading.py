"""Loading a topology: a YAML (or JSON) file read, validated, and every failure told in one line.

Called by the CLI, the watchers, the sandbox and the Pulumi program. Validation is pydantic's
(:mod:`controller.topology.schema`); every failure becomes one
:class:`~controller.errors.SpecError` naming the file, the line, the component and the field.
"""

# No ``from __future__ import annotations`` here (see controller.topology.kinds).
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from controller.collector import paused_gc
from controller.errors import SpecError
from controller.topology.kinds import ApiSpec, FunctionSpec, Kind, QueueSpec
from controller.topology.schema import Topology

EXAMPLE_SPEC = Path(__file__).resolve().parents[2] / "examples" / "orders" / "topology.yaml"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def default_spec_path() -> Path:
    """``$FAILOVER_SPEC``, else ``./topology.yaml``, else the example application."""
    env = os.environ.get("FAILOVER_SPEC")
    if env:
        return Path(env)
    local = Path("topology.yaml")
    if local.exists():
        return local
    if not EXAMPLE_SPEC.exists():  # installed from a wheel: the example lives in the repository
        raise SpecError(
            "no topology: pass --spec FILE, set $FAILOVER_SPEC, or run where topology.yaml is"
        )
    return EXAMPLE_SPEC


def load(path: str | Path) -> Topology:
    """Read and validate a topology file.

    Parameters
    ----------
    path : a YAML file.

    Returns
    -------
    The validated :class:`Topology` (graph checks are :func:`controller.plan.graph.build`'s).

    Raises
    ------
    SpecError
        One line naming the file, the line, the component and the field.
    """
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise SpecError("file does not exist", source=source)
    if path.is_dir():
        raise SpecError("is a directory, not a topology file", source=source)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read: {exc}", source=source) from exc
    return loads(text, source=source, base=path.resolve().parent)


@paused_gc()
def loads(text: str, *, source: str = "<topology>", base: Path | None = None) -> Topology:
    """Validate a topology given as YAML text; see :func:`load`.

    ``base`` is the folder of the topology file: each function's ``code`` is resolved against
    it (and becomes absolute) and checked to hold the handler's module. Without ``base`` (text
    that is not a file) the code folders are left as written and not checked.
    """
    try:
        data = _load_json(text)
    except SpecError as exc:
        raise SpecError(exc.reason, source=source) from None
    try:
        if data is None:
            data = yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"not valid YAML: {problem}", source=source, line=line) from exc
    if data is None:
        raise SpecError("file is empty", source=source)
    if not isinstance(data, dict):
        raise SpecError(
            f"expected a mapping with app, regions and components, found {type(data).__name__}",
            source=source,
        )
    written = _absolute_code(data, base) if base is not None else {}
    try:
        topology = Topology.model_validate(data)
    except ValidationError as exc:
        raise _spec_error(exc, yaml.compose(text, Loader=_LOADER), source) from None
    problem = (
        _signed_routes_behind_failover(topology)
        or _queue_hides_less_than_its_consumer_runs(topology)
        or _dns_name_outside_its_zone(topology)
    )
    if problem is None and base is not None:
        problem = _missing_code(topology, written)
    if problem is not None:
        component, loc, message = problem
        line = _line_of(yaml.compose(text, Loader=_LOADER), ["components", component, *loc])
        raise SpecError(message, source=source, component=component, field=".".join(loc), line=line)
    return topology


#: A rule broken: (component, field path inside it, message).
_Problem = tuple[str, list[str], str]


def _signed_routes_behind_failover(topology: Topology) -> _Problem | None:
    """An ``auth: iam`` route of an api that a dns failover record points at, if any.

    A SigV4 signature carries the region in its scope: once DNS sends the name to another
    region, the API there refuses every signed request (403), so the route does not survive a
    failover. A JWT authorizer does.
    """
    for _, dns in topology.of_kind(Kind.DNS):
        api = topology.components.get(dns.target)
        if not isinstance(api, ApiSpec):
            continue
        for i, route in enumerate(api.routes):
            if route.auth == "iam":
                return (
                    dns.target,
                    ["routes", str(i), "auth"],
                    f"auth iam on {route.method} {route.path} does not survive a failover: "
                    f"SigV4 signs for one region and {dns.name} moves between regions "
                    "(use auth: jwt)",
                )
    return None


def _queue_hides_less_than_its_consumer_runs(topology: Topology) -> _Problem | None:
    """A queue whose visibility timeout is shorter than a function it feeds may run.

    Lambda refuses such an event source mapping (CreateEventSourceMapping: the queue's
    visibility timeout must be at least the function's timeout): ``pulumi up`` would fail
    halfway, and a message could be handed to a second consumer while the first still works.
    """
    for name, fn in topology.of_kind(Kind.FUNCTION):
        for event in fn.events:
            queue = topology.components.get(event.source)
            if isinstance(queue, QueueSpec) and queue.visibility_timeout < fn.timeout:
                return (
                    event.source,
                    ["visibility_timeout"],
                    f"is {queue.visibility_timeout} s, less than the timeout of {name} "
                    f"({fn.timeout} s), which it feeds: Lambda refuses the mapping and a message "
                    "would reach a second consumer while the first still works",
                )
    return None


def _dns_name_outside_its_zone(topology: Topology) -> _Problem | None:
    """A dns record whose name is not inside its zone, or is the zone's apex.

    Route 53 refuses a record outside its hosted zone, and the failover records are CNAMEs,
    which cannot be at a zone's apex.
    """
    for name, dns in topology.of_kind(Kind.DNS):
        record, zone = dns.name.rstrip("."), dns.zone.rstrip(".")
        if record == zone:
            return (
                name,
                ["name"],
                f"{record} is the apex of the zone {zone}: the failover records are CNAMEs, "
                "which cannot be at a zone's apex (use a name inside it, e.g. api." + zone + ")",
            )
        if not record.endswith("." + zone):
            return (name, ["name"], f"{record} is not inside the zone {zone}")
    return None


def _absolute_code(data: Any, base: Path) -> dict[str, str]:
    """Rewrite each function's ``code`` in the raw ``data`` as a folder under ``base``.

    Done before validation, on plain strings (no file system call, one join per distinct
    folder), so that ten thousand components cost nothing; returns absolute -> as written.
    """
    components = data.get("components") if isinstance(data, dict) else None
    if not isinstance(components, dict):
        return {}
    default = FunctionSpec.model_fields["code"].default
    written: dict[str, str] = {}
    absolute: dict[str, str] = {}
    for comp in components.values():
        if not isinstance(comp, dict) or comp.get("kind") != Kind.FUNCTION:
            continue
        code = comp.get("code", default)
        if not isinstance(code, str):
            continue  # validation says what is wrong with it
        if code not in absolute:
            absolute[code] = os.path.normpath(os.path.join(base, code))
            written[absolute[code]] = code
        comp["code"] = absolute[code]
    return written


def _missing_code(topology: Topology, written: Mapping[str, str]) -> _Problem | None:
    """The first function whose code folder, or handler module in it, does not exist.

    A folder that does not exist, or one without the handler's module (``mod.func`` needs
    ``mod.py`` or ``mod/__init__.py``), would deploy a function that fails at every request.
    """
    checked: set[tuple[str, str]] = set()  # many functions share one folder and handler
    for name, spec in topology.of_kind(Kind.FUNCTION):
        if (spec.code, spec.handler) in checked:
            continue
        folder = Path(spec.code)
        if not folder.is_dir():
            return (
                name,
                ["code"],
                f"code folder {written.get(spec.code, spec.code)!r} does "
                f"not exist (resolved against the topology's folder: {folder})",
            )
        module, _, function = spec.handler.rpartition(".")
        relative = Path(*module.split(".")) if module else None
        if (
            relative is None
            or not function
            or not (
                (folder / relative).with_suffix(".py").is_file()
                or (folder / relative / "__init__.py").is_file()
            )
        ):
            return (
                name,
                ["handler"],
                f"handler {spec.handler!r}: no module "
                f"{module or '(none)'!r} in the code folder {folder}",
            )
        checked.add((spec.code, spec.handler))
    return None


def _load_json(text: str) -> Any:
    """JSON is YAML too, and parses an order of magnitude faster: try it first for ``{...}``."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None
    except RecursionError:  # YAML's loader refuses the same nesting; say it the same way
        raise SpecError("not valid JSON: exceeded maximum nesting depth") from None


def _spec_error(exc: ValidationError, node: yaml.Node | None, source: str) -> SpecError:
    """Turn pydantic's first error into one SpecError naming component, field and line."""
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    line = _line_of(node, loc)
    kinds = {k.value for k in Kind}
    component = None
    if len(loc) >= 2 and loc[0] == "components":
        component = loc[1]
        loc = [p for p in loc[2:] if p not in kinds]
    elif loc[:1] == ["components"]:
        loc = ["components"]
    field = ".".join(loc) or None
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        message = "required field is missing"
    elif err["type"] == "extra_forbidden":
        message = "unknown field"
    elif err["type"] == "union_tag_invalid":
        allowed = ", ".join(k.value for k in Kind)
        message = f"unknown kind {err['input'].get('kind')!r} (one of: {allowed})"
    elif err["type"] == "union_tag_not_found":
        message = "missing 'kind'"
    more = len(exc.errors()) - 1
    if more:
        message += f" (and {more} more error{'s' if more > 1 else ''})"
    return SpecError(message, source=source, component=component, field=field, line=line)


def _line_of(node: yaml.Node | None, loc: list[str]) -> int | None:
    """The 1-based line of the deepest YAML node found along ``loc``."""
    line = None
    for key in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if getattr(k, "value", None) == key), None)
            if node is not None:
                line = node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and key.isdigit() and int(key) < len(node.value):
            node = node.value[int(key)]
            line = node.start_mark.line + 1
        else:
            break
    return line

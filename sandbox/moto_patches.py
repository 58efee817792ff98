"""What the sandbox changes in moto, inside its own server processes only.

Called by :mod:`sandbox.launcher` before it forks the servers. moto "runs" an enabled
event source mapping itself: on every ``SendMessage`` or table write it invokes the function
(without Docker, a stub that always succeeds) and then deletes the queue's messages and empties
the table's stream shard. The sandbox runs the handlers itself, in-process, by polling the
queues and reading the streams (``dynamodbstreams``) as Lambda would, so moto must leave them
alone: mappings still exist, are enabled and disabled through the Lambda API and are listed as
usual, but are never attached to their queue, table or stream inside moto.

moto also sends an event to the targets of a rule that is disabled, which EventBridge never does;
the sandbox fences an event bus by disabling its rules, so a disabled rule here delivers nothing.
And its ``GetFunction`` leaves out a reserved concurrency of 0, which Lambda's answers.

A message's delay (``DelaySeconds``) counts AWS seconds, as every period the deployment
configures does on the sandbox's scaled clock (:mod:`controller.clock`).

More changes make the servers cheaper without changing what they answer: moto's list of its
own packages is read once, a DynamoDB transaction backs up the items it touches rather than whole
tables, botocore's list of a service's regions is read once per process rather than once per
botocore session moto makes (importing moto's EC2 backend, which SSM's imports, made three), and
the backend that serves a host and the actions of a response class are looked up once, and a
KMS key that is not asymmetric gets moto's private key only if something uses it. The launcher
builds its servers without what they never use: werkzeug's URL builders, the EC2 backend
that moto's SSM imports, and flask-cors's headers on every answer, which AWS's APIs do not send.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

#: The moto classes that keep their own copy of the mappings attached to them.
ATTACHED = (
    ("moto.sqs.models", "Queue"),
    ("moto.dynamodb.models.table", "Table"),
    ("moto.kinesis.models", "Stream"),
)


class InertMappings(dict[str, Any]):
    """A mapping table that forgets what is put in it: moto never sees a mapping to invoke."""

    def __setitem__(self, key: str, value: Any) -> None:
        return None


def detach_event_sources() -> None:
    """Make every queue, table and stream moto creates from now on ignore its mappings."""
    import importlib

    for module_name, class_name in ATTACHED:
        cls = getattr(importlib.import_module(module_name), class_name)
        if getattr(cls.__init__, "_failover_detached", False):
            continue
        cls.__init__ = _detached(cls.__init__)


def _detached(init: Any) -> Any:
    @functools.wraps(init)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.lambda_event_source_mappings = InertMappings()

    wrapper._failover_detached = True  # type: ignore[attr-defined]
    return wrapper


def respect_rule_state() -> None:
    """Make a disabled EventBridge rule deliver nothing, as EventBridge does."""
    from moto.events.models import Rule

    send = Rule.send_to_targets
    if getattr(send, "_failover_stateful", False):
        return

    @functools.wraps(send)
    def send_if_enabled(self: Any, *args: Any, **kwargs: Any) -> None:
        if self.state == "ENABLED":
            send(self, *args, **kwargs)

    send_if_enabled._failover_stateful = True  # type: ignore[attr-defined]
    Rule.send_to_targets = send_if_enabled  # type: ignore[method-assign]


def share_data_loader() -> None:
    """Give the process one botocore data loader per search path, and so one copy of each data
    file botocore reads.

    moto makes a new botocore session wherever it asks for a service's regions (three at the
    import of its EC2 backend, which SSM's imports, and one for each backend it creates), and a
    new loader of its own for each service model it reads. Each new loader parsed botocore's
    1.2 MB ``endpoints.json`` again, or listed botocore's 400 service folders again (0.03 to
    0.13 s of CPU each time). A loader keeps what it has read for its whole life already, and
    botocore's data files do not change while a server runs.
    """
    import botocore.session
    import moto.core.utils

    for module in (botocore.session, moto.core.utils):
        factory = getattr(module, "create_loader", None)  # None: a later release moved it
        if factory is not None and not getattr(factory, "_failover_shared", False):
            module.create_loader = _one_per_arguments(factory)  # type: ignore[attr-defined]


def _one_per_arguments(factory: Any) -> Any:
    """``factory``, answering the same arguments with the object it made for them first."""
    made: dict[tuple[Any, ...], Any] = {}

    @functools.wraps(factory)
    def shared(*args: Any) -> Any:
        if args not in made:
            made[args] = factory(*args)
        return made[args]

    shared._failover_shared = True  # type: ignore[attr-defined]
    return shared


def cache_module_list() -> None:
    """List moto's service packages once, not on every request.

    moto's server works out which service a request is for while holding one lock per server,
    and on the way lists its own package directory (``os.listdir`` and an ``isdir`` per entry),
    twice per request. The directory does not change while the server runs.
    """
    from moto import backends

    if getattr(backends.list_of_moto_modules, "_failover_cached", False):
        return
    modules = frozenset(backends.list_of_moto_modules())

    def listed() -> frozenset[str]:
        return modules

    listed._failover_cached = True  # type: ignore[attr-defined]
    backends.list_of_moto_modules = listed


class _TableCopies:
    """moto's ``copy`` module as its DynamoDB backend sees it: during a light transaction, a
    table's "deep copy" is the table itself (the transaction keeps its own backup)."""

    def __init__(self) -> None:
        import copy
        import threading

        self.active = threading.local()
        self._copy = copy

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        if getattr(self.active, "on", False) and isinstance(value, Table):
            return value
        return self._copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._copy, name)


def light_transactions() -> None:
    """Back up only the items a DynamoDB transaction touches, as DynamoDB does, not every table.

    moto's ``TransactWriteItems`` deep-copies each whole table it writes to, to roll back when a
    condition fails: its cost grows with the table. The control table takes two transactions per
    failover step (the journal's token-guarded writes) and keeps every run, so each step made the
    global server copy the whole journal twice. Here the touched items are copied instead, and put
    back if moto rolls the transaction back.
    """
    import copy

    from moto.dynamodb import models

    backend = models.DynamoDBBackend
    if getattr(backend.transact_write_items, "_failover_light", False):
        return
    copies = _TableCopies()
    models.copy = copies  # type: ignore[assignment,attr-defined]
    original = backend.transact_write_items

    @functools.wraps(original)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        try:
            saved = [
                (table, key, copy.deepcopy(table.get_item(*key)))
                for table, key in _touched(self, transact_items)
            ]
        except Exception:  # a malformed request: moto's own path names the error
            return original(self, transact_items)
        copies.active.on = True
        try:
            return original(self, transact_items)
        except Exception:
            for table, (hash_key, range_key), item in saved:
                _put_back(table, hash_key, range_key, item)
            raise
        finally:
            copies.active.on = False

    transact_write_items._failover_light = True  # type: ignore[attr-defined]
    backend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _touched(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, Any]]:
    """``(table, (hash, range))`` of every item a transaction names."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    out = []
    for entry in transact_items:
        _, op = next(iter(entry.items()))
        table = backend.get_table(op["TableName"])
        key = op["Key"] if "Key" in op else op["Item"]
        range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        out.append((table, (DynamoType(key[table.hash_key_attr]), range_key)))
    return out


def _put_back(table: Any, hash_key: Any, range_key: Any, item: Any) -> None:
    """Restore one item of ``table`` to ``item`` (None: it did not exist)."""
    if range_key is not None:
        rows = table.items[hash_key]
        if item is None:
            rows.pop(range_key, None)
        else:
            rows[range_key] = item
    elif item is None:
        table.items.pop(hash_key, None)
    else:
        table.items[hash_key] = item


#: API Gateway's hosted zone of regional endpoints, per region (what a custom domain's alias
#: record names); another region gets a stable made-up one.
REGIONAL_ZONES = {
    "us-east-1": "Z1UJRXOUMOOFQ8",
    "us-east-2": "ZOJJZC49E0EPZ",
    "us-west-1": "Z2MUQ32089INYE",
    "us-west-2": "Z2OJLYMUO9EFXC",
    "eu-west-1": "ZLY8HYME6SFDD",
    "eu-west-2": "ZJ5UAJN8Y3Z2Q",
    "eu-central-1": "Z1U9ULNL0V5AJ3",
    "ap-southeast-2": "Z2RPCDW04V8134",
}


def regional_domain_names() -> None:
    """Give an API Gateway custom domain the regional target AWS gives it.

    AWS answers ``CreateDomainName`` with, per configuration, the name the domain's DNS record
    points at (``d-<id>.execute-api.<region>.amazonaws.com``), its hosted zone and its status;
    moto keeps the configuration as it was sent. The failover records of the Pulumi program
    point at that target, so the sandbox needs it.
    """
    from moto.apigatewayv2.models import DomainName
    from moto.moto_api._internal import mock_random

    init = DomainName.__init__
    if getattr(init, "_failover_regional", False):
        return

    @functools.wraps(init)
    def with_target(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        region = str(kwargs["backend"].region_name if "backend" in kwargs else args[-1].region_name)
        for config in self.domain_name_configurations:
            if config.get("endpointType", "REGIONAL") == "REGIONAL":
                ident = "".join(
                    mock_random.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(10)
                )
                config.setdefault(
                    "apiGatewayDomainName", f"d-{ident}.execute-api.{region}.amazonaws.com"
                )
                config.setdefault(
                    "hostedZoneId",
                    REGIONAL_ZONES.get(region, "Z" + region.upper().replace("-", "")[:12]),
                )
            config.setdefault("domainNameStatus", "AVAILABLE")

    with_target._failover_regional = True  # type: ignore[attr-defined]
    DomainName.__init__ = with_target  # type: ignore[method-assign]


def one_copy_of_code() -> None:
    """Keep a function's zip once, as bytes, not also as the base64 text it was sent in.

    moto keeps both (a watcher's bundle is 7.6 MB, 10 MB more in base64, in every region);
    each server's snapshot, taken after the deployment and put back at every reset, would copy
    both. Nothing in moto reads the text again once the bytes are made.
    """
    from moto.awslambda.models import LambdaFunction

    setter = LambdaFunction._set_function_code
    if getattr(setter, "_failover_one_copy", False):
        return

    @functools.wraps(setter)
    def set_code(self: Any, updated_spec: dict[str, Any]) -> None:
        setter(self, updated_spec)
        for spec in (self.code, updated_spec):
            if isinstance(spec, dict) and spec.get("ZipFile"):
                spec["ZipFile"] = ""

    set_code._failover_one_copy = True  # type: ignore[attr-defined]
    LambdaFunction._set_function_code = set_code  # type: ignore[method-assign]


def delays_on_the_clock() -> None:
    """A message's ``DelaySeconds`` are AWS seconds, on the sandbox's scaled clock.

    moto holds a delayed message for that many wall seconds: at k = 5 a watcher's link delayed
    by its 10 s interval would come 50 AWS seconds later (:mod:`controller.watchers.chain`).
    """
    from moto.core.utils import unix_time_millis
    from moto.sqs.models import Message

    from controller import clock

    if getattr(Message.delay, "_failover_clock", False):
        return

    def delay(self: Any, delay_seconds: int) -> None:
        self.delayed_until = unix_time_millis() + clock.wall(float(delay_seconds)) * 1000

    delay._failover_clock = True  # type: ignore[attr-defined]
    Message.delay = delay  # type: ignore[method-assign]


def mappings_keep_their_alias() -> None:
    """An event source mapping on an alias names the alias, as Lambda's does.

    moto resolves the alias the mapping was created with to its version and reports the
    version's ARN: a poller would invoke that version, and keep invoking it after the alias
    moved. Lambda keeps the ARN it was given (``FunctionArn`` of a mapping on ``fn:live`` is
    ``...:function:fn:live``).
    """
    from moto.awslambda.models import EventSourceMapping

    init = EventSourceMapping.__init__
    if getattr(init, "_failover_alias", False):
        return

    @functools.wraps(init)
    def keep_alias(self: Any, spec: dict[str, Any]) -> None:
        init(self, spec)
        given = str(spec.get("FunctionName", ""))
        if given.startswith("arn:") and len(given.split(":")) == 8:
            self.function_arn = given

    keep_alias._failover_alias = True  # type: ignore[attr-defined]
    EventSourceMapping.__init__ = keep_alias  # type: ignore[method-assign]


def reserved_zero_answered() -> None:
    """``GetFunction`` answers a reserved concurrency of 0, as Lambda's does.

    moto leaves ``Concurrency`` out of the answer when none is reserved, and also when 0 is (a
    fenced function), so a reader of ``GetFunction`` alone would take a fenced function for one
    with no reservation. Lambda answers ``{"ReservedConcurrentExecutions": 0}`` there: it is
    where Terraform's provider reads a function's reserved concurrency, 0 (off) included.
    """
    from moto.awslambda.models import LambdaFunction

    get_code = LambdaFunction.get_code
    if getattr(get_code, "_failover_zero", False):
        return

    @functools.wraps(get_code)
    def with_zero(self: Any) -> dict[str, Any]:
        answer: dict[str, Any] = get_code(self)
        if self.reserved_concurrency is not None and "Concurrency" not in answer:
            answer["Concurrency"] = {"ReservedConcurrentExecutions": int(self.reserved_concurrency)}
        return answer

    with_zero._failover_zero = True  # type: ignore[attr-defined]
    LambdaFunction.get_code = with_zero  # type: ignore[method-assign]


def function_key(name: str) -> tuple[str, str | None]:
    """A function's name and qualifier from any form Lambda's ``FunctionName`` takes: a name,
    a function ARN, a version or alias ARN, a partial ARN.

    >>> function_key("fn"), function_key("123456789012:function:fn")
    (('fn', None), ('fn', None))
    >>> function_key("arn:aws:lambda:us-east-1:123456789012:function:fn:live")
    ('fn', 'live')
    """
    parts = name.split(":")
    if "function" in parts:
        parts = parts[parts.index("function") + 1 :]
    return parts[0], (parts[1] if len(parts) > 1 and parts[1] else None)


def mappings_listed_by_function() -> None:
    """``ListEventSourceMappings`` filtered by ``FunctionName`` finds a function's mappings in
    whichever form each was created and the filter is given (name, ARN, partial ARN), as
    Lambda's does; a qualified filter finds the mappings of that version or alias.

    moto compares the filter with the string the mapping was created with: a mapping that
    ``pulumi up`` created on the function's ARN was not listed under its name, and the sandbox's
    Lambda never polled the watcher's chain queue (:mod:`sandbox.watchers`).
    """
    from moto.awslambda.models import LambdaBackend

    listed = LambdaBackend.list_event_source_mappings
    if getattr(listed, "_failover_by_function", False):
        return

    @functools.wraps(listed)
    def by_function(self: Any, event_source_arn: str, function_name: str) -> Any:
        esms = listed(self, event_source_arn, "")
        if not function_name:
            return esms
        wanted = function_key(function_name)
        return [m for m in esms if function_key(str(m.function_arn)) == wanted]

    by_function._failover_by_function = True  # type: ignore[attr-defined]
    LambdaBackend.list_event_source_mappings = by_function  # type: ignore[method-assign]


def dispatch_lookups_once() -> None:
    """Work out once, not on every request, which backend serves a host and which actions a
    response class has: the answers depend only on moto's code, which does not change while a
    server runs.

    moto's server matched every request's host against each service's URL patterns (several
    hundred regular expressions, under the server's one dispatch lock), and listed the
    response class's functions with ``inspect.getmembers`` to check the action is one of them:
    together about a tenth of a server's CPU per request. A host no backend serves is looked
    up every time, as before (moto prints a line for it).
    """
    import moto.core.responses
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    names = getattr(moto.core.responses, "method_names_from_class", None)  # None: moved
    if names is not None and not getattr(names, "_failover_once", False):
        moto.core.responses.method_names_from_class = _once_per_class(names)  # type: ignore[attr-defined]
    lookup = DomainDispatcherApplication.get_backend_for_host
    if getattr(lookup, "_failover_once", False):
        return
    found: dict[str, Any] = {}

    @functools.wraps(lookup)
    def backend_for_host(self: Any, host: str | None) -> Any:
        if host is not None and host in found:
            return found[host]
        backend = lookup(self, host)
        if host is not None and backend:
            found[host] = backend
        return backend

    backend_for_host._failover_once = True  # type: ignore[attr-defined]
    DomainDispatcherApplication.get_backend_for_host = backend_for_host  # type: ignore[method-assign]


def _once_per_class(names: Any) -> Any:
    """``names(cls)`` (a class's function names), kept per class as a frozen set."""
    kept: dict[type, frozenset[str]] = {}

    @functools.wraps(names)
    def once(cls: type) -> frozenset[str]:
        if cls not in kept:
            kept[cls] = frozenset(names(cls))
        return kept[cls]

    once._failover_once = True  # type: ignore[attr-defined]
    return once


def private_keys_when_used() -> None:
    """Give a KMS key moto's private key the first time something uses it, not when the key is
    made, unless its spec is asymmetric (the spec is checked as it was, at ``CreateKey``).

    moto makes an RSA-2048 private key for every KMS key, symmetric ones included (about 50 ms
    of CPU each): the deployment's own keys and DynamoDB's AWS-managed key, in every region, at
    every deployment, while a symmetric key has no private key in KMS. Nothing the sandbox
    deploys signs with one; if a call does, the key is made then, as moto would have made it.
    """
    from moto.kms import models
    from moto.kms.utils import KeySpec

    make = models.generate_private_key  # type: ignore[attr-defined]
    if getattr(make, "_failover_when_used", False):
        return
    rsa = (KeySpec.RSA_2048, KeySpec.RSA_3072, KeySpec.RSA_4096)
    asymmetric = {str(spec.value) for spec in rsa} | {str(s) for s in KeySpec.ecc_key_specs()}

    @functools.wraps(make)
    def when_used(key_spec: str) -> Any:
        return make(key_spec) if key_spec in asymmetric else DeferredKey(make, key_spec)

    when_used._failover_when_used = True  # type: ignore[attr-defined]
    models.generate_private_key = when_used  # type: ignore[attr-defined]


#: Makes a :class:`DeferredKey`'s key (two threads using one key at once make one key).
_MAKING = threading.Lock()


class DeferredKey:
    """moto's private key of a KMS key, made by ``make(key_spec)`` the first time one of its
    attributes is read; it pickles (a server's snapshot) made or not."""

    def __init__(self, make: Callable[[str], Any], key_spec: str) -> None:
        self._make = make
        self._spec = key_spec
        self._key: Any = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_make", "_spec", "_key"):
            raise AttributeError(name)  # pickle's lookups, and an instance being unpickled
        with _MAKING:
            if self._key is None:
                self._key = self._make(self._spec)
        return getattr(self._key, name)


def url_builders_when_used() -> None:
    """werkzeug compiles each route's two URL builders when the route is added: Python source,
    built with :mod:`ast` and compiled, for ``url_for``. moto's servers match URLs and never
    build one, and a sandbox's launcher adds about 600 routes (Flask's and moto's routers) at
    every ``sandbox up``: each builder is compiled when first called instead."""
    from werkzeug.routing.rules import Rule

    compile_builder = Rule._compile_builder
    if getattr(compile_builder, "_failover_lazy", False):
        return

    def lazy(self: Any, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
        built: list[Callable[..., tuple[str, str]]] = []

        def build(rule: Any, *args: Any, **kwargs: Any) -> tuple[str, str]:
            if not built:
                built.append(compile_builder(rule, append_unknown))
            return built[0](rule, *args, **kwargs)

        return build

    lazy._failover_lazy = True  # type: ignore[attr-defined]
    Rule._compile_builder = lazy  # type: ignore[method-assign]


class _LazyEc2Backends:
    """Stands for ``moto.ec2.ec2_backends`` in moto's SSM: EC2 is imported on first use."""

    def __getitem__(self, account: str) -> Any:
        from moto.ec2.models import ec2_backends

        return ec2_backends[account]


def ssm_without_ec2() -> None:
    """moto's SSM without moto's EC2 imported for it: EC2 only when SSM first uses it.

    moto's SSM imports EC2's backends for one thing, a command sent to instances found by their
    tags (``SendCommand`` with targets), which nothing of the sandbox sends; importing EC2 loads
    its instance types and its regions' zones, 0.45 s of CPU at every ``sandbox up`` (the
    launcher imports every service before forking its servers). SSM is imported here with a
    stand-in for ``moto.ec2`` that gives it :class:`_LazyEc2Backends`; the stand-in is gone once
    SSM is imported, so any other import of ``moto.ec2`` gets moto's own. Does nothing once
    either is imported.
    """
    import sys
    import types

    if "moto.ssm.models" in sys.modules or "moto.ec2" in sys.modules:
        return
    stand_in = types.ModuleType("moto.ec2")
    stand_in.ec2_backends = _LazyEc2Backends()  # type: ignore[attr-defined]
    sys.modules["moto.ec2"] = stand_in
    try:
        import moto.ssm.models  # noqa: F401
    finally:
        if sys.modules.get("moto.ec2") is stand_in:
            del sys.modules["moto.ec2"]


def no_cors() -> None:
    """Build moto's service apps without flask-cors, as moto's own ``MOTO_DISABLE_GLOBAL_CORS``
    setting does (read once, when moto's server module is imported).

    flask-cors added ``Access-Control-Allow-*`` headers to every answer of every service, which
    AWS's APIs do not (S3's bucket CORS is S3's own, answered by moto's S3, not by this), and
    no browser calls the emulator (the status page reads ``failover serve``): its after-request
    hook took about 7 % of a server's CPU on a call as light as ``ssm:GetParameters``.
    """
    from moto.moto_server import werkzeug_app

    werkzeug_app.DISABLE_GLOBAL_CORS = True  # type: ignore[attr-defined]

"""The sandbox as a whole: start it, attach to it, fail and heal a region, reset it, stop it.

Called by the CLI (``failover sandbox ...``), by the tests' session fixture and by the demo.
Processes are in :mod:`~sandbox.servers`, what the account has before the program runs in
:mod:`~sandbox.account`, the program's deployment onto the servers in :mod:`~sandbox.deploy`,
what is remembered between commands in :mod:`~sandbox.state`; this module only sequences them.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import secrets
import signal
import sys
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller import clock
from controller.contract import GLOBAL, FailMode
from controller.errors import FailoverError, UsageError
from controller.topology import Kind, Topology, load
from controller.topology.manifest import ClockManifest, Manifest, WatcherRef, load_manifest
from sandbox import account, ghosts, mrsc, owner, route53, servers
from sandbox import watchers as watcher_procs
from sandbox.controls import SECRET_HEADER
from sandbox.deploy import cache as stack_cache
from sandbox.state import (
    DEFAULT_STATE_DIR,
    DEPLOYED_FILE,
    LOG_DIR,
    MANIFEST_FILE,
    SNAPSHOT_DIR,
    SOCKET_FILE,
    STACK_FILE,
    Condition,
    CorruptStateError,
    SandboxState,
    ServerState,
    private_dir,
    read_state,
    remove_state,
    write_private,
    write_state,
)

if TYPE_CHECKING:  # botocore: only for the verbs that call AWS (up, reset), not fail/heal/down
    from controller.aws import AwsSettings, Clients

log = logging.getLogger(__name__)


class Sandbox:
    """A running sandbox: one moto server per region plus ``global``, and its manifest.

    Use :meth:`up` to start one or :meth:`attach` to find a running one.
    """

    def __init__(self, state_dir: Path, state: SandboxState, manifest: Manifest) -> None:
        self.state_dir = Path(state_dir)
        self.state = state
        self.manifest = manifest
        self.use_clock()
        _trust(state)

    @property
    def own_clock(self) -> clock.Clock:
        """The sandbox's clock: every process it starts runs on it, whichever clock the caller
        is on (a test may hold two sandboxes, each on its own)."""
        return clock.Clock(origin=self.state.time_origin, scale=self.state.time_scale)

    def use_clock(self) -> None:
        """Put this process (the demo, a test, the CLI) on the sandbox's clock, as its own
        processes are."""
        clock.use(self.own_clock)

    # -- starting and finding ------------------------------------------------------------------

    @classmethod
    def up(
        cls,
        spec_path: str | Path,
        state_dir: str | Path = DEFAULT_STATE_DIR,
        *,
        watchers: bool = False,
        time_scale: float = 1.0,
    ) -> Sandbox:
        """Start a server per region and ``global``, deploy the Pulumi program onto them (the
        manifest is its output); with ``watchers``, start each application region's watcher
        as ``pulumi up`` deploys them. Every process of the sandbox runs on AWS time at
        ``time_scale`` times the wall's pace from now (:mod:`controller.clock`).

        Raises
        ------
        FailoverError
            A sandbox already runs in ``state_dir`` (nothing is done), or a server or the
            deployment failed (everything started is stopped again).
        SpecError
            The topology is invalid.
        """
        state_dir = Path(state_dir)
        _refuse_if_running(state_dir)
        topology = load(spec_path)
        spec = str(Path(spec_path).resolve())
        started = time.monotonic()
        names = server_names(topology)
        # A stack deployed before from the same inputs is put back, not deployed again; one
        # another sandbox is deploying is waited for, before the clock starts.
        code = [Path(fn.code) for _, fn in topology.of_kind(Kind.FUNCTION)]
        digest = stack_cache.key(Path(spec), code)
        private_dir(state_dir)  # before the claim: nothing between it and the try below raises
        claim = contextlib.ExitStack()
        kept = stack_cache.find(digest) if digest else None
        if digest and kept is None:
            kept = claim.enter_context(stack_cache.claimed(digest))
        scaled = clock.Clock(origin=time.time(), scale=time_scale)  # the one wall reading
        clock.use(scaled)  # before anything starts: every child gets it (Clock.environment)
        state = SandboxState(
            spec=spec,
            started_at=scaled.origin,
            servers={},
            secret=secrets.token_urlsafe(24),
            time_origin=scaled.origin,
            time_scale=scaled.scale,
        )
        # While the launcher imports moto, this process imports the program and builds its
        # bundles: two cores, two jobs (not needed for a kept stack, unless it cannot be used).
        ahead = ThreadPoolExecutor(1, thread_name_prefix="prepare")
        prepared = ahead.submit(_prepare, topology) if kept is None else None
        try:
            state.servers, state.zygote = servers.start_all(
                dict.fromkeys(names, 0),
                state_dir / LOG_DIR,
                state_dir / SOCKET_FILE,
                state.secret,
                on=scaled,
            )
            write_state(state_dir, state)
            servers.wait_ready(state.servers.values())
            if prepared is not None:
                prepared.result()
            _configure_gates(topology, state)
            manifest = (_restore_kept(kept, topology, state, state_dir) if kept else None) or (
                _deploy(topology, state, state_dir, digest)
            )
        except BaseException:
            _stop_all(state)
            remove_state(state_dir)
            clock.use(clock.from_environment())
            raise
        finally:
            ahead.shutdown(wait=True)
            claim.close()  # kept (or not) by now: a sandbox waiting for it goes on
        log.info("sandbox up in %.2f s", time.monotonic() - started)
        box = cls(state_dir, state, manifest)
        if watchers:
            box.start_watchers()
        return box

    @classmethod
    def attach(cls, state_dir: str | Path = DEFAULT_STATE_DIR) -> Sandbox:
        """The sandbox running in ``state_dir``.

        Raises
        ------
        FailoverError
            No sandbox runs there.
        """
        state_dir = Path(state_dir)
        state = read_state(state_dir)
        if state is None:
            raise FailoverError(f"no sandbox in {state_dir}: start one with 'failover sandbox up'")
        return cls(state_dir, state, load_manifest(state_dir / MANIFEST_FILE))

    # -- what it is ----------------------------------------------------------------------------

    @functools.cached_property
    def topology(self) -> Topology:
        """The topology the sandbox was started from."""
        return load(self.state.spec)

    @functools.cached_property
    def clients(self) -> Clients:
        """Clients on the sandbox's endpoints: regions to their servers, global services to
        ``global``."""
        from controller.aws import Clients

        return Clients(endpoints=dict(self.manifest.endpoints))

    @property
    def manifest_path(self) -> Path:
        """Where the manifest is written."""
        return self.state_dir / MANIFEST_FILE

    def describe(self) -> dict[str, Any]:
        """Every server: its pid, port, endpoint, condition and whether it is alive."""
        return {
            "state_dir": str(self.state_dir),
            "spec": self.state.spec,
            "app": self.manifest.app,
            "primary": self.manifest.primary,
            "manifest": str(self.manifest_path),
            "servers": {
                name: {
                    "pid": s.pid,
                    "port": s.port,
                    "endpoint": s.url,
                    "condition": s.condition.value,
                    "alive": servers.is_ours(s),
                    "log": s.log,
                }
                for name, s in self.state.servers.items()
            },
            "watchers": {
                region: {
                    "pid": pid,
                    "alive": watcher_procs.is_ours(pid, region),
                    "log": str(watcher_procs.log_path(self.state_dir, region)),
                }
                for region, pid in self.state.watchers.items()
            },
        }

    # -- failing and healing -------------------------------------------------------------------

    def fail(self, region: str, mode: FailMode | str) -> None:
        """Make ``region`` fail: ``down`` kills its server, ``hang`` stops it (SIGSTOP; its
        alarms' evaluator stops with it, nothing sets their state), ``partition`` cuts it off
        (it serves its own callers, reaches no other region and none reaches it;
        :mod:`sandbox.mrsc`). Failing a region that already fails that way does nothing.
        """
        mode = FailMode(mode)
        self._reload()
        server = self._server(region)
        stopped = False
        if server.condition is Condition.HUNG and mode is FailMode.DOWN:
            servers.resume(server)  # a stopped process is killed all the same; say it is down
        if mode is FailMode.DOWN:
            if servers.is_ours(server):  # what it holds outlives it, as an AWS region's does
                servers.snapshot(server.url, snapshot_file(self.state_dir, region, DOWN))
            servers.kill(server)
            server.condition = Condition.DOWN
        elif server.condition is Condition.DOWN:
            raise FailoverError(
                f"region {region} is down; heal it before making it "
                f"{'hang' if mode is FailMode.HANG else 'partitioned'}"
            )
        elif mode is FailMode.PARTITION:
            if server.condition is Condition.HUNG:
                raise FailoverError(f"region {region} hangs; heal it before partitioning it")
            server.condition = Condition.PARTITIONED
        elif server.condition in (Condition.RUNNING, Condition.PARTITIONED):
            if server.condition is Condition.PARTITIONED:
                server.condition = Condition.RUNNING
                self._save()
                self._configure_gates()
            servers.hang(server)  # its alarm evaluator stops with it
            server.condition = Condition.HUNG
            stopped = True
        self._fail_watcher(region, mode)
        if stopped:  # a stopped process cannot see its owner go (sandbox.owner)
            watcher = self.state.watchers.get(region)
            owner.guard([server.pid], [watcher] if watcher is not None else [])
        self._save()
        self._configure_gates()
        log.info("region %s failed (%s)", region, mode.value)

    def heal(self, region: str) -> None:
        """Bring ``region`` back: a hung server is resumed, a partitioned one joined again, a
        killed one restarted on the same port with what it held when it went down (or, if it
        died on its own, what the program deployed): an AWS region comes back from an outage
        with its resources, still in the shape it had (a primary still active: the watchers
        fence it). Its alarms change only as its evaluator finds them in its metrics again."""
        self._reload()
        server = self._server(region)
        if server.condition is Condition.HUNG:
            servers.resume(server)
        elif server.condition is Condition.DOWN or not servers.is_ours(server):
            self._restart(server)
            server.condition = Condition.RUNNING
            self._save()
            self._configure_gates()
            down = snapshot_file(self.state_dir, server.name, DOWN)
            kept = down if down.exists() else snapshot_file(self.state_dir, server.name)
            if not servers.restore(server.url, kept):
                raise FailoverError(f"region {region} restarted, but {kept} cannot be read")
            down.unlink(missing_ok=True)
        server.condition = Condition.RUNNING
        self._save()
        self._configure_gates()
        self._heal_watcher(region)
        log.info("region %s healed", region)

    def evaluate_alarms(self, on: bool = True, ahead: float = 0.0) -> None:
        """Have every region evaluate its alarms from its metrics (``on``) or not, each region's
        evaluator clock ``ahead`` seconds ahead of the wall clock (a test reaching the end of
        an alarm's period). Kept in the state: a region healed or restarted evaluates as told."""
        self._reload()
        self.state.alarms_evaluated, self.state.alarms_ahead = on, ahead
        self._save()
        self._configure_gates()

    def serve_api(self, hosts: Mapping[str, str]) -> None:
        """Tell Route 53's checkers which regional API hosts a data plane serves, and where
        (host to loopback URL; empty: none, they probe each region's front door)."""
        self._reload()
        self.state.api_hosts = dict(hosts)
        self._save()
        self._configure_gates()

    def model_round_trip(self, seconds: float, regions: list[str] | None = None) -> None:
        """Make every server (or those of ``regions``) wait ``seconds`` before each answer, as
        a real region's API does (0 turns it off). Not kept in the state: a restarted server
        answers at once."""
        chosen = [s for name, s in self.state.servers.items() if regions is None or name in regions]
        with ThreadPoolExecutor(max(1, len(chosen))) as pool:
            list(pool.map(lambda s: servers.set_round_trip(s.url, seconds), chosen))

    # -- resetting and stopping ----------------------------------------------------------------

    def reset(self) -> None:
        """Heal every region and put every server back as ``up`` left it (fresh state for each
        test, without starting processes); the watchers are stopped.

        Each server restores the snapshot it took after the deployment (a few milliseconds,
        :mod:`sandbox.snapshot`); one restarted since reads it from its file, and keeps it.
        """
        # Before anything is resumed: a request sent before the reset never lands after it.
        first = ghosts.begin(self.state_dir / LOG_DIR, held=self._may_hold_requests())
        self.stop_watchers()
        self.state.alarms_evaluated, self.state.alarms_ahead = False, 0.0
        for server in self.state.servers.values():
            if server.condition is Condition.HUNG:
                servers.resume(server)
            elif server.condition is Condition.DOWN or not servers.is_ours(server):
                self._restart(server)
            server.condition = Condition.RUNNING
        ghosts.wait_for(first)
        self._save()
        state_dir = self.state_dir

        def restore(server: ServerState) -> None:
            if servers.restore(server.url):
                return
            kept = snapshot_file(state_dir, server.name)
            if not servers.restore(server.url, kept, keep=True):
                raise FailoverError(f"server {server.name}: no snapshot, and {kept} cannot be read")

        with ThreadPoolExecutor(len(self.state.servers)) as pool:
            list(pool.map(restore, self.state.servers.values()))
        for name in self.state.servers:
            snapshot_file(state_dir, name, DOWN).unlink(missing_ok=True)
        self._configure_gates(forget=True)  # Route 53's checkers start over, every check healthy
        self.manifest = load_manifest(state_dir / DEPLOYED_FILE)
        _save_current(self.topology, self.manifest, state_dir)
        # A new world, new connections: this process's clients made for the last one (an
        # executor's guarded ones) would each keep theirs open, a descriptor each, until down.
        _close_connections(server.url for server in self.state.servers.values())

    def down(self) -> None:
        """Stop every server (resuming stopped ones first) and remove the state."""
        self._reload()
        _stop_all(self.state)
        _close_connections(server.url for server in self.state.servers.values())
        remove_state(self.state_dir)
        clock.use(clock.from_environment())  # this process leaves the sandbox's clock
        log.info("sandbox in %s is down", self.state_dir)

    # -- the watchers (one per application region, in that region's failure domain) -----------

    def start_watchers(
        self, regions: list[str] | None = None, schedule: float | None = None
    ) -> dict[str, int]:
        """Start the watcher of every application region (or of ``regions``) that is up and has
        none running; ``schedule``: seconds between invocations (default: a minute)."""
        self._reload()
        self.state.watcher_schedule = schedule
        for region in regions or list(self.topology.regions.all):
            pid = self.state.watchers.get(region)
            if pid and watcher_procs.is_ours(pid, region):
                continue
            if self._server(region).condition is not Condition.RUNNING:
                continue  # a failed region's watcher starts when the region is healed
            self.state.watchers[region] = watcher_procs.start(
                self.state_dir, self.state.spec, region, schedule, on=self.own_clock
            )
        self._save()
        return dict(self.state.watchers)

    def stop_watchers(self) -> None:
        """Stop every watcher process (the sandbox goes on without automation)."""
        self._reload()
        for region, pid in self.state.watchers.items():
            watcher_procs.kill(pid, region)
        self.state.watchers = {}
        self._save()

    def _fail_watcher(self, region: str, mode: FailMode) -> None:
        pid = self.state.watchers.get(region)
        if pid is None:
            return
        if mode is FailMode.DOWN:
            watcher_procs.kill(pid, region)
        elif mode is FailMode.HANG:
            watcher_procs.signal_watcher(pid, region, signal.SIGSTOP)
        # partitioned: it runs on, cut off with its region (its calls name their home region)

    def _heal_watcher(self, region: str) -> None:
        pid = self.state.watchers.get(region)
        if pid is None:
            return
        if watcher_procs.is_ours(pid, region):
            watcher_procs.signal_watcher(pid, region, signal.SIGCONT)
        else:  # killed with its region: the schedule invokes the function again
            self.state.watchers[region] = watcher_procs.start(
                self.state_dir,
                self.state.spec,
                region,
                self.state.watcher_schedule,
                on=self.own_clock,
            )
            self._save()

    # -- helpers -------------------------------------------------------------------------------

    def _may_hold_requests(self) -> bool:
        """True when a request sent before now may still be on its way to a server: one hangs
        (its socket holds them), or a watcher runs (:mod:`sandbox.ghosts`)."""
        self._reload()
        hung = any(s.condition is Condition.HUNG for s in self.state.servers.values())
        return hung or bool(self.state.watchers)

    def _server(self, region: str) -> ServerState:
        if region not in self.state.servers or region == mrsc.STORE:
            known = ", ".join(n for n in self.state.servers if n != mrsc.STORE)
            raise UsageError(f"unknown region {region!r} (one of: {known})")
        return self.state.servers[region]

    def _configure_gates(self, *, forget: bool = False) -> None:
        _configure_gates(self.topology, self.state, forget=forget)

    def _restart(self, server: ServerState) -> None:
        servers.kill(server)
        pid = servers.respawn(self.state.zygote, server)
        if pid is None:
            fresh, _ = servers.start_all(
                {server.name: server.port},
                self.state_dir / LOG_DIR,
                secret=self.state.secret,
                on=self.own_clock,
            )
            pid = fresh[server.name].pid
        server.pid = pid
        self._save()
        servers.wait_ready([server])

    def _reload(self) -> None:
        """Pick up what another command (or another :class:`Sandbox`) changed on disk."""
        state = read_state(self.state_dir)
        if state is not None:
            self.state = state
            _trust(state)
        if self.manifest_path.exists():
            endpoints = self.manifest.endpoints
            self.manifest = load_manifest(self.manifest_path)
            if self.manifest.endpoints != endpoints:
                self.__dict__.pop("clients", None)

    def _save(self) -> None:
        write_state(self.state_dir, self.state)


#: The snapshot a server writes when its region goes down (``fail --mode down``).
DOWN = "down"


def deploy_settings() -> AwsSettings:
    """The deployment's calls: one attempt each (creating is not idempotent), a generous read."""
    from controller.aws import AwsSettings

    return AwsSettings(connect_timeout=2.0, read_timeout=30.0, max_attempts=1)


def _close_connections(urls: Iterable[str]) -> None:
    """Close this process's idle connections to ``urls`` (:func:`controller.aws.
    close_connections`). A process that never imported the module that makes clients has none:
    ``failover sandbox down`` is spared importing botocore to find that out."""
    made = sys.modules.get("controller.aws.clients")
    if made is not None:
        made.close_connections(urls)


def snapshot_file(state_dir: Path, server: str, kind: str = "deployed") -> Path:
    """Where ``server`` writes its snapshot: as deployed, or as it was when it went down."""
    return private_dir(state_dir / SNAPSHOT_DIR) / f"{server}.{kind}"


def endpoints_of(urls: Mapping[str, str]) -> dict[str, str]:
    """The manifest's endpoints: every server's but the control store's (the controller reaches
    the control table through its regions, never the store)."""
    return {name: url for name, url in urls.items() if name != mrsc.STORE}


def _prepare(topology: Topology) -> None:
    """Import the Pulumi program and build its bundles (see :meth:`Sandbox.up`)."""
    from sandbox.deploy.engine import prepare  # pulumi: only when deploying

    prepare(topology)


def _deploy(
    topology: Topology, state: SandboxState, state_dir: Path, digest: str | None = None
) -> Manifest:
    """Set the account up, run the Pulumi program against every server, then have each keep a
    snapshot of what it holds (in memory and in its file, for :meth:`Sandbox.reset`); the
    program's manifest, with the emulator's endpoints, written as the current one and as the
    snapshots' own. With a ``digest``, the stack is kept for the next sandbox of the same
    inputs (:mod:`sandbox.deploy.cache`)."""
    from sandbox.deploy.engine import deploy, sandbox_settings  # pulumi: only when deploying

    urls = {n: s.url for n, s in state.servers.items()}
    endpoints = endpoints_of(urls)
    from controller.aws import Clients

    account.create_zones(topology, Clients(endpoints=endpoints, settings=deploy_settings()))
    settings = sandbox_settings(topology, endpoints, state.spec)
    deployed = deploy(topology, settings)
    deployed.save(state_dir / STACK_FILE)
    with ThreadPoolExecutor(len(urls)) as pool:
        list(pool.map(lambda n: servers.snapshot(urls[n], snapshot_file(state_dir, n)), urls))
    manifest = _settle(topology, deployed.manifest, state, state_dir)
    if digest:
        files = {stack_cache.snapshot_name(n): snapshot_file(state_dir, n) for n in urls} | {
            stack_cache.STACK: state_dir / STACK_FILE,
            stack_cache.MANIFEST: state_dir / DEPLOYED_FILE,
        }
        stack_cache.keep(digest, urls, files)
    return manifest


def _settle(
    topology: Topology, manifest: Manifest, state: SandboxState, state_dir: Path
) -> Manifest:
    """``manifest`` on the sandbox's clock, written as the snapshots' own and as the current
    one (a deployment's or a kept stack's)."""
    # The real clock is no clock: as a stack exported from AWS.
    manifest.clock = (
        ClockManifest(origin=state.time_origin, scale=state.time_scale)
        if state.time_scale != 1.0
        else None
    )
    manifest.save(state_dir / DEPLOYED_FILE)
    _save_current(topology, manifest, state_dir)
    return manifest


def _restore_kept(
    kept: stack_cache.Kept, topology: Topology, state: SandboxState, state_dir: Path
) -> Manifest | None:
    """Put the stack ``kept`` back onto the new servers, their addresses rewritten (see
    :mod:`sandbox.deploy.cache`), as :func:`_deploy` leaves them; None when it cannot be (a
    server's address of another length, a file gone), and the servers are as they started."""
    urls = {n: s.url for n, s in state.servers.items()}
    rewrite = stack_cache.rebase(kept.urls, urls)
    if rewrite is None:
        return None
    try:
        for name in urls:
            write_private(snapshot_file(state_dir, name), rewrite(kept.snapshot(name).read_bytes()))
        stack = rewrite((kept.folder / stack_cache.STACK).read_bytes())
        deployed = rewrite((kept.folder / stack_cache.MANIFEST).read_bytes())
    except OSError as exc:
        log.info("kept stack %s not used: %s", kept.folder.name, exc)
        return None

    def restore(name: str) -> None:
        if not servers.restore(urls[name], snapshot_file(state_dir, name)):
            raise FailoverError(f"server {name}: cannot read its kept stack")
        servers.snapshot(urls[name])  # its own copy, in memory, for Sandbox.reset

    with ThreadPoolExecutor(len(urls)) as pool:
        list(pool.map(restore, urls))
    write_private(state_dir / STACK_FILE, stack)
    manifest = _settle(topology, Manifest.model_validate_json(deployed), state, state_dir)
    log.info("stack %s put back from the cache", kept.folder.name)
    return manifest


def _save_current(topology: Topology, manifest: Manifest, state_dir: Path) -> None:
    """Add to each region's watcher (the program names it) the file its sandbox process logs
    to, and write the manifest as the sandbox's current one."""
    for region, part in manifest.regions.items():
        named = part.watcher or WatcherRef(
            function=topology.watcher_function(region),
            log_group=topology.watcher_log_group(region),
        )
        part.watcher = named.model_copy(
            update={"log_file": str(watcher_procs.log_path(state_dir, region))}
        )
    manifest.save(state_dir / MANIFEST_FILE)


def server_names(topology: Topology) -> list[str]:
    """A server per region of the application, per control region it does not use (the
    witness, say), ``global`` and the control store (for the example: its three regions,
    us-east-2, global and control-store).
    """
    regions = topology.regions.all
    extra = [r for r in topology.control_regions.all if r not in regions]
    return [*regions, *extra, GLOBAL, mrsc.STORE]


def _configure_gates(topology: Topology, state: SandboxState, *, forget: bool = False) -> None:
    """Tell every answering server the control regions, who is partitioned and who does not
    answer (:mod:`sandbox.mrsc`, :func:`sandbox.account.control_config`), and the global
    server's Route 53 checkers where each check's name leads (``forget``: what they found so
    far)."""
    answering = {
        n: s.url
        for n, s in state.servers.items()
        if s.condition in (Condition.RUNNING, Condition.PARTITIONED) and servers.is_ours(s)
    }
    config = account.control_config(
        topology,
        {n: s.url for n, s in state.servers.items()},
        state.secret,
        frozenset(n for n, s in state.servers.items() if s.condition is Condition.PARTITIONED),
        frozenset(state.servers.keys() - answering.keys()),  # hung, down, or dead on its own
    )
    mrsc.configure(answering, config)
    with ThreadPoolExecutor(max(1, len(answering))) as pool:
        list(
            pool.map(
                lambda url: servers.configure_alarms(
                    url, state.alarms_evaluated, state.alarms_ahead
                ),
                answering.values(),
            )
        )
    checkers = state.servers.get(GLOBAL)
    if checkers is not None and checkers.url in answering.values():
        regions = {n: s.url for n, s in state.servers.items() if n in topology.regions.all}
        route53.configure(
            checkers.url,
            route53.Network(dict(state.api_hosts), regions, forget=forget),
            {SECRET_HEADER: state.secret},
        )


def _trust(state: SandboxState) -> None:
    """Let this process's calls to the servers' controls carry the sandbox's secret."""
    servers.trust((s.url for s in state.servers.values()), state.secret)


def _stop_orphans(state_dir: Path) -> list[int]:
    """Stop the processes of a sandbox whose state file is unreadable or gone; their pids."""
    pids = servers.find_processes(state_dir / LOG_DIR) + watcher_procs.find_processes(state_dir)
    if pids:
        log.warning(
            "the state in %s is lost: stopping its processes %s",
            state_dir,
            ", ".join(map(str, pids)),
        )
        servers.stop_pids(pids)
    remove_state(state_dir)
    return pids


def _refuse_if_running(state_dir: Path) -> None:
    try:
        state = read_state(state_dir)
    except CorruptStateError:
        state = None
    if state is None:  # unreadable or removed: never start a second set beside the first
        _stop_orphans(state_dir)
        return
    running = [s for s in state.servers.values() if servers.is_ours(s)]
    if running:
        pids = ", ".join(f"{s.name}={s.pid}" for s in running)
        raise FailoverError(
            f"a sandbox is already running in {state_dir} ({pids}); "
            "stop it first with 'failover sandbox down'"
        )
    log.info("removing the state of a sandbox that is no longer running")
    servers.stop_zygote(state.zygote)
    remove_state(state_dir)


def _stop_all(state: SandboxState) -> None:
    for region, pid in state.watchers.items():
        watcher_procs.kill(pid, region)
    servers.stop_zygote(state.zygote)
    with ThreadPoolExecutor(max(1, len(state.servers))) as pool:
        list(pool.map(servers.stop, state.servers.values()))


def down(state_dir: str | Path = DEFAULT_STATE_DIR) -> list[str]:
    """Stop the sandbox in ``state_dir``; the names of the servers stopped (none if none ran).

    A sandbox whose state file is unreadable or removed is found by its processes and stopped
    all the same (they are then named by pid).
    """
    try:
        state = read_state(Path(state_dir))
    except CorruptStateError:
        state = None
    if state is None:  # unreadable or removed: its processes are found by their logs
        return [f"pid {pid}" for pid in _stop_orphans(Path(state_dir))]
    _stop_all(state)
    remove_state(Path(state_dir))
    return list(state.servers)


__all__ = ["FailMode", "Sandbox", "down"]

"""What the sandbox holds between commands: its processes, their ports and their condition.

Called by :mod:`sandbox.lifecycle` only. The state is one JSON file,
``<state_dir>/sandbox.json``, written atomically; the manifest beside it is the public part.
"""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from controller.errors import FailoverError

DEFAULT_STATE_DIR = Path(".failover")
STATE_FILE = "sandbox.json"
MANIFEST_FILE = "manifest.json"
#: The manifest as ``up`` deployed it, which every server's snapshot holds (``reset``).
DEPLOYED_FILE = "deployed.json"
#: Where each server writes its snapshots (``reset``, a region healed after it went down).
SNAPSHOT_DIR = "snapshots"
#: Every resource the program created (type, name, region, id, inputs, outputs): the stack.
STACK_FILE = "stack.json"
LOG_DIR = "logs"
SOCKET_FILE = "launcher.sock"


class Condition(StrEnum):
    """What a region's process is doing now."""

    RUNNING = "running"
    DOWN = "down"  # killed: connections are refused
    HUNG = "hung"  # stopped with SIGSTOP: calls time out
    PARTITIONED = "partitioned"  # serves its own callers only, reaches no other region


class ServerState(BaseModel):
    """One moto server process: a region, or ``global``."""

    model_config = ConfigDict(extra="forbid")

    name: str
    pid: int
    port: int
    log: str
    condition: Condition = Condition.RUNNING

    @property
    def url(self) -> str:
        """The server's endpoint URL (loopback only)."""
        return f"http://127.0.0.1:{self.port}"


class Zygote(BaseModel):
    """The warm process that forks a new server when a killed region is restarted."""

    model_config = ConfigDict(extra="forbid")

    pid: int
    socket: str
    #: Its output (how a zygote a forkserver's launcher forked is known: :mod:`sandbox.servers`).
    log: str = ""


class SandboxState(BaseModel):
    """Every process of one sandbox, and the topology it was started from."""

    model_config = ConfigDict(extra="forbid")

    spec: str
    started_at: float
    servers: dict[str, ServerState]
    zygote: Zygote | None = None
    #: Each application region's watcher process (``sandbox.watchers``), by region; empty when
    #: the sandbox was started without them.
    watchers: dict[str, int] = Field(default_factory=dict)
    #: Seconds between two of their scheduled invocations (None: a minute, as deployed).
    watcher_schedule: float | None = None
    #: Whether the regions evaluate their alarms (:mod:`sandbox.cloudwatch.evaluator`), and
    #: how many seconds ahead of the wall clock their evaluators' clocks run.
    alarms_evaluated: bool = False
    alarms_ahead: float = 0.0
    #: What a request to the servers' controls must carry (generated at ``up``; this file is
    #: 0600, so only the sandbox's owner can read it).
    secret: str = ""
    #: The sandbox's clock (:mod:`controller.clock`): AWS time = origin + k * (wall - origin),
    #: the same for every process it runs.
    time_origin: float = 0.0
    time_scale: float = 1.0
    #: The regional API hosts a data plane serves (host to its loopback endpoint), where
    #: Route 53's checkers probe them (:mod:`sandbox.route53`); empty without a data plane.
    api_hosts: dict[str, str] = Field(default_factory=dict)


class CorruptStateError(FailoverError):
    """The state file exists but cannot be read; :func:`sandbox.lifecycle.down` still finds the
    sandbox's processes and stops them."""

    exit_code = 2


def private_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) if need be, and make it 0700 whatever the umask."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` atomically, as a 0600 file whatever the
    umask."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(data.encode("utf-8") if isinstance(data, str) else data)
    tmp.replace(path)


def state_path(state_dir: Path) -> Path:
    """Where the sandbox state of ``state_dir`` lives."""
    return state_dir / STATE_FILE


def read_state(state_dir: Path) -> SandboxState | None:
    """The saved state, or None when no sandbox was started in ``state_dir``.

    Raises
    ------
    CorruptStateError
        The file exists but is not a sandbox state.
    """
    path = state_path(state_dir)
    if not path.exists():
        return None
    try:
        return SandboxState.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, ValidationError, RecursionError, OSError) as exc:
        raise CorruptStateError(
            f"{path}: not a sandbox state file ({exc.__class__.__name__}); 'failover sandbox "
            "down' finds the sandbox's processes and stops them"
        ) from None


def write_state(state_dir: Path, state: SandboxState) -> None:
    """Save ``state`` atomically, in a 0700 folder, as a 0600 file (it holds the secret)."""
    private_dir(state_dir)
    write_private(state_path(state_dir), state.model_dump_json(indent=2))


def remove_state(state_dir: Path) -> None:
    """Delete the state and the manifests (the logs stay, for post-mortems)."""
    for name in (STATE_FILE, MANIFEST_FILE, DEPLOYED_FILE, STACK_FILE, SOCKET_FILE):
        (state_dir / name).unlink(missing_ok=True)
    snapshots = state_dir / SNAPSHOT_DIR
    if snapshots.is_dir():
        for kept in snapshots.iterdir():
            kept.unlink(missing_ok=True)
        snapshots.rmdir()

"""The Typer application, its consoles, shared options and the one error boundary."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from controller.errors import (
    CommandInterruptedError,
    FailoverError,
    RunInterruptedError,
    UsageError,
)
from controller.interfaces.cli import ending

app = typer.Typer(
    name="failover",
    help="Multi-region failover for serverless applications on AWS.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: Rich's help formatter costs ~90 ms of imports and layout at every
    # `failover --help`, which operators type often in an incident (bench/cli_startup.py).
    rich_markup_mode=None,
)
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

SpecOption = Annotated[
    Path | None,
    typer.Option(
        "--spec",
        "-s",
        help="Topology file (default: $FAILOVER_SPEC, ./topology.yaml, then the example)",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def configure_logging(verbose: int, log_json: bool) -> None:
    """Send the library's log records to stderr: Rich lines, or JSON lines with ``--log-json``."""
    import logging

    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    root = logging.getLogger()
    root.handlers.clear()
    handler: logging.Handler
    if log_json:
        from controller.interfaces.cli.logs import JsonFormatter

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    else:
        from rich.logging import RichHandler

        handler = RichHandler(console=err_console, show_path=False, show_time=verbose > 1)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("botocore", "boto3", "urllib3", "werkzeug"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def _root_command() -> Any:
    """The root's own options (typer builds their click form)."""
    root = typer.Typer(add_completion=False, rich_markup_mode=None)

    @root.command()
    def options(
        verbose: Annotated[
            int,
            typer.Option("--verbose", "-v", count=True, help="More log output (-vv for debug)."),
        ] = 0,
        log_json: Annotated[
            bool, typer.Option("--log-json", help="Log as JSON lines (audit).")
        ] = False,
    ) -> None:
        # Start-up ends here, after the verb's module is imported: every verb reads a topology,
        # so its pydantic models are built now too, before the collector resumes.
        import controller.topology  # noqa: F401
        from controller.collector import started

        started()
        configure_logging(verbose, log_json)

    return typer.main.get_command(root)


class LazyGroup(TyperGroup):
    """The ``failover`` command: lists every verb, but imports and builds a verb only to run it.

    ``verbs`` maps each verb to the module that registers it on ``application`` and its one-line
    help, so ``failover --help`` imports no verb's module. Typer turns a verb's parameters into
    click parameters through pydantic adapters; doing that for every verb at every call cost
    ``failover --help`` a third of its start-up, so only the verb that runs is built.
    """

    def __init__(self, application: typer.Typer, verbs: dict[str, tuple[str, str]]) -> None:
        self.application = application
        self.verbs = verbs
        root = _root_command()
        super().__init__(
            name="failover",
            help=application.info.help,
            no_args_is_help=True,
            rich_markup_mode=None,
            callback=root.callback,
            params=root.params,
        )

    def invoke(self, ctx: Any) -> Any:
        """Run the verb; Ctrl-C (or SIGTERM) in it reaches the error boundary (typer would make
        it a silent exit 130): one path for every interruption, see :func:`run`."""
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            raise CommandInterruptedError(str(exc) or "interrupted") from None

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.verbs)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in self.verbs:
            info = self._registered(cmd_name)
            if info is not None:
                self.commands[cmd_name] = self._build(info)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        from typer._click.utils import make_default_short_help

        limit = formatter.width - 6 - max(len(name) for name in self.verbs)
        rows = [
            (name, make_default_short_help(summary, limit))
            for name, (_, summary) in self.verbs.items()
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def _registered(self, name: str) -> Any:
        """The typer info ``name``'s module registers (importing the module), or None."""
        import importlib

        module = f"controller.interfaces.cli.{self.verbs[name][0]}"
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:  # a bundle without this verb (the Lambda watcher)
            if exc.name != module:
                raise
            return None
        return registered(self.application).get(name)

    def _build(self, info: Any) -> Any:
        if isinstance(info, typer.models.TyperInfo):
            return typer.main.get_group_from_info(
                info, pretty_exceptions_short=False, rich_markup_mode=None, suggest_commands=True
            )
        return typer.main.get_command_from_info(
            info, pretty_exceptions_short=False, rich_markup_mode=None
        )


def registered(application: typer.Typer) -> dict[str, Any]:
    """Every verb registered on ``application`` so far: its name and typer info."""
    infos: dict[str, Any] = {}
    for command in application.registered_commands:
        callback_name = getattr(command.callback, "__name__", "")
        infos[command.name or typer.main.get_command_name(callback_name)] = command
    for group in application.registered_groups:
        infos[str(group.name)] = group
    return infos


def print_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout, nothing else."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def spec_path(spec: Path | None) -> Path:
    """The topology file to read: the option, else the default chain."""
    from controller.topology import default_spec_path

    return spec if spec is not None else default_spec_path()


def _terminated(signum: int, frame: Any) -> None:
    """SIGTERM ends a command as Ctrl-C does: a run in flight is journalled interrupted."""
    raise KeyboardInterrupt("terminated (SIGTERM)")


def run(application: typer.Typer, argv: list[str] | None, verbs: dict[str, tuple[str, str]]) -> int:
    """Run ``application`` and map every outcome to an exit code (the one error boundary).

    The one path of an interruption: SIGTERM is made Ctrl-C's ``KeyboardInterrupt`` here; a run
    in flight turns it into :class:`~controller.errors.RunInterruptedError` (the executor
    journals the run ``interrupted`` and releases the lease), told as one line with the command
    that continues it; anything else that was interrupted says so. Exit code 130 either way.
    ``verbs``: each verb's module and one-line help (:class:`LazyGroup`).
    """
    import signal

    handlers = {
        signal.SIGTERM: _terminated,
        # Also when started with SIGINT ignored (a background job): Ctrl-C must stop.
        signal.SIGINT: signal.default_int_handler,
    }
    previous: dict[signal.Signals, Any] = {}
    try:
        for signum, handler in handlers.items():
            previous[signum] = signal.signal(signum, handler)
    except ValueError:  # not the main thread: leave signals alone
        pass
    ending.own_process(argv is None)
    try:
        return _run(application, argv, verbs)
    finally:
        ending.own_process(False)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run(
    application: typer.Typer, argv: list[str] | None, verbs: dict[str, tuple[str, str]]
) -> int:
    command = LazyGroup(application, verbs)
    try:
        result = command.main(args=argv, prog_name="failover", standalone_mode=False)
    except RunInterruptedError as exc:  # Ctrl-C or SIGTERM mid-run: the executor journalled it
        return _fail(RunInterruptedError(exc.run_id, exc.why, _manifest_option(argv)))
    except (CommandInterruptedError, KeyboardInterrupt, typer.Abort) as exc:  # no run began
        err_console.print(f"[red]{escape(str(exc) or 'interrupted')}[/]", highlight=False)
        return 130
    except FailoverError as exc:
        return _fail(exc)
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except RecursionError:
        err_console.print(
            "[bold red]error:[/] an input nests too deeply to be read", highlight=False
        )
        return 2
    except Exception as exc:
        if type(exc).__module__.split(".")[0] == "botocore":
            from controller.aws import explain  # only now: an AWS error means boto3 is loaded

            explained = explain(exc)
            if explained is not None:
                return _fail(explained)
        # Typer's (vendored) click usage errors: a bad option, a missing argument.
        if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")):
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()  # type: ignore[attr-defined]  # prints the help
            return 0
        err_console.print(f"[bold red]error:[/] {escape(exc.format_message())}", highlight=False)
        return 2
    return int(result) if isinstance(result, int) else 0


def _manifest_option(argv: list[str] | None) -> str:
    """`` --manifest M`` when the command line named one, for a command that repeats it.

    >>> _manifest_option(["execute", "--to", "r", "-m", "x.json"]), _manifest_option(["runs"])
    (' --manifest x.json', '')
    """
    args = sys.argv[1:] if argv is None else [str(a) for a in argv]
    for i, arg in enumerate(args):
        if arg in ("--manifest", "-m") and i + 1 < len(args):
            return f" --manifest {args[i + 1]}"
        if arg.startswith("--manifest="):
            return f" --manifest {arg.removeprefix('--manifest=')}"
    return ""


def _fail(exc: FailoverError) -> int:
    """Print ``exc`` as one red line (its message made one line) and return its exit code."""
    text = " ".join(str(exc).split())
    err_console.print(f"[bold red]error:[/] {escape(text)}", highlight=False, soft_wrap=True)
    return exc.exit_code


#: What each optional extra brings that its verbs cannot run without.
EXTRAS = {"sandbox": ("moto", "matplotlib", "pulumi", "pulumi_aws")}
#: The entry-point group through which an extra offers the CLI its code (``pyproject.toml``).
EXTRA_GROUP = "failover.extras"


def extra(name: str, extra_name: str) -> Any:
    """What the entry point ``name`` of an optional extra offers (a module), or say in one line
    what to install (exit 2).

    The sandbox, the demo and the drill live in a package of their own, which imports the
    controller and never the other way: it offers them to the CLI as entry points of the
    ``failover.extras`` group, so the controller names none of its modules; the CLI loads one
    only when such a verb runs. The package ships with the controller; the extra brings the
    emulator it drives.
    """
    import importlib.util
    from importlib.metadata import entry_points

    hint = f"pip install 'failover[{extra_name}]'"
    for needed in EXTRAS.get(extra_name, ()):
        try:
            found = importlib.util.find_spec(needed) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            raise UsageError(
                f"this verb needs the {extra_name} extra ({needed} is not installed): {hint}"
            )
    offered = entry_points(group=EXTRA_GROUP, name=name)
    if not offered:
        raise UsageError(
            f"this verb needs the {extra_name} extra (nothing offers {name!r}): {hint}"
        )
    (entry,) = tuple(offered)[:1]
    try:
        return entry.load()
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if top not in {entry.value.split(".")[0], *EXTRAS.get(extra_name, ())}:
            raise
        raise UsageError(
            f"this verb needs the {extra_name} extra ({top} is not installed): {hint}"
        ) from exc


def load_spec(spec: Path | None) -> tuple[Any, Any]:
    """Load and validate the topology and build its graph: ``(topology, graph)``."""
    from controller import topology as specs
    from controller.plan import graph

    path = spec_path(spec)
    topology = specs.load(path)
    return topology, graph.build(topology, source=str(path))


ManifestOption = Annotated[
    Path,
    typer.Option(
        "--manifest",
        "-m",
        help="The manifest written by the sandbox or exported from the Pulumi stack.",
    ),
]


def load_deployment(manifest: Path, spec: Path | None) -> tuple[Any, Any, Any]:
    """``(topology, manifest, clients)`` of a deployed application.

    The topology is ``spec`` if given, else the file the manifest was made from, else the
    default chain; the clients reach the manifest's endpoints (the emulator) or AWS itself. A
    manifest that disagrees with the topology is refused here, before anything acts (exit 2).
    """
    from controller.aws import Clients
    from controller.topology import load
    from controller.topology.manifest import check_deployment, load_manifest

    deployed = load_manifest(manifest)
    if spec is None and deployed.spec and Path(deployed.spec).exists():
        spec = Path(deployed.spec)
    topology = load(spec_path(spec))
    check_deployment(deployed, topology, source=str(manifest))
    run_on_clock_of(deployed)
    return topology, deployed, Clients(endpoints=deployed.endpoints)


def run_on_clock_of(deployed: Any) -> None:
    """Run this process on the clock of the sandbox a manifest names (AWS's time there), unless
    the environment names one already (a process the sandbox started)."""
    from controller import clock
    from controller.contract import ENV_TIME_SCALE

    if deployed.clock is not None and not os.environ.get(ENV_TIME_SCALE):
        clock.use(clock.Clock(origin=deployed.clock.origin, scale=deployed.clock.scale))

"""``failover serve``: the live status page of a deployment, until Ctrl-C."""

from __future__ import annotations

from typing import Annotated

import typer

from controller.cli.app import ManifestOption, SpecOption, app, console, load_deployment
from controller.contract import DEFAULT_MANIFEST, STATUS_DEADLINE_SECONDS


@app.command()
def serve(
    port: Annotated[
        int,
        typer.Option("--port", "-p", min=0, max=65535, help="Port to listen on (0: a free one)."),
    ] = 8080,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to listen on; anything but the loopback exposes the page to the network.",
        ),
    ] = "127.0.0.1",
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-host",
            help="A name the page answers to (its Host header; repeatable); required with a "
            "wildcard --host such as 0.0.0.0.",
        ),
    ] = None,
    allow_actions: Annotated[
        bool,
        typer.Option(
            "--allow-actions",
            help="Offer pausing and resuming automation, behind a token printed here.",
        ),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            min=0.5,
            help="Seconds a status read waits for a region before showing it unreachable.",
        ),
    ] = STATUS_DEADLINE_SECONDS,
    manifest: ManifestOption = DEFAULT_MANIFEST,
    spec: SpecOption = None,
) -> None:
    """Serve a live status page (and its JSON API) of every region, run and watcher."""
    import secrets
    import threading

    from controller.serve import Api, StatusServer, deployment_sources
    from controller.serve.server import check_listen
    from controller.views import run_in_progress

    check_listen(host, allow_host or ())  # before anything is read: one line, exit 2
    topology, deployed, clients = load_deployment(manifest, spec)
    # A control table the manifest names wrongly is refused now (exit 2, one line), as status
    # refuses it, rather than served as an error page until Ctrl-C; an unreachable one is not.
    run_in_progress(deployed, clients)
    token = secrets.token_urlsafe(24) if allow_actions else None
    api = Api(deployment_sources(topology, deployed, clients, deadline=timeout), token=token)
    server = StatusServer(api, host, port, allowed_hosts=allow_host or ()).start()
    try:
        console.print(
            f"status page: {server.url}  (JSON: {server.url}api/status; Ctrl-C stops)",
            highlight=False,
        )
        if token:
            console.print(
                f"actions token: {token}  (POST {server.url}api/automation/pause "
                "with 'Authorization: Bearer <token>')",
                highlight=False,
            )
        threading.Event().wait()
    finally:
        server.stop()

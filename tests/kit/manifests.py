"""Manifests that reach nothing: every endpoint a closed loopback port, and a listener that
counts what reaches it (proof that a call stayed, or did not stay, where it should)."""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path

from controller.topology import Topology
from controller.topology.manifest import ComponentRef, ControlManifest, Manifest, RegionManifest
from tests.kit.paths import EXAMPLE

DEEP = 100_000  # far beyond any recursion limit


def dead_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fake_manifest(topology: Topology) -> Manifest:
    """A manifest of ``topology`` whose every endpoint is a closed loopback port."""
    port = dead_port()
    regions = {
        r: RegionManifest(
            mode_parameter=topology.mode_parameter(r),
            components={
                n: ComponentRef(kind=str(c.kind), name=topology.physical_name(n, r))
                for n, c in topology.components.items()
            },
        )
        for r in topology.regions.all
    }
    return Manifest(
        app=topology.app,
        primary=topology.regions.primary,
        spec=str(EXAMPLE),
        control=ControlManifest(table=topology.control_table, regions=["global"]),
        regions=regions,
        endpoints={r: f"http://127.0.0.1:{port}" for r in (*topology.regions.all, "global")},
    )


def write_manifest(tmp_path: Path, manifest: Manifest) -> Path:
    path = tmp_path / "manifest.json"
    path.write_text(manifest.model_dump_json(), encoding="utf-8")
    return path


class Trap:
    """A loopback listener that counts the connections made to it and closes them."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.hits = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.hits += 1
            conn.close()

    def close(self) -> None:
        # shutdown wakes the blocked accept() (close alone does not, on Linux)
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(timeout=5)
        assert not self.thread.is_alive()

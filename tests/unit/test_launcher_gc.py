"""The launcher builds moto with the cyclic garbage collector paused and freezes it before it
forks; every server it forks collects again (a server without its collector would leak)."""

from __future__ import annotations

import json
import subprocess
import sys

#: In a process of its own (the launcher is one): pause the collector, fork through the
#: launcher's ``_fork`` a child that reports its collector, and print what the child said.
CHILD = """
import gc, json, os, sys
from sandbox.launcher import _fork
gc.disable()
gc.freeze()
read, write = os.pipe()
def report():
    seen = {"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}
    os.write(write, json.dumps(seen).encode())
pid = _fork(report)
os.waitpid(pid, 0)
print(os.read(read, 4096).decode())
print(json.dumps({"parent_enabled": gc.isenabled()}))
"""


def test_a_forked_server_collects_again_and_keeps_what_the_launcher_froze() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=True
    ).stdout.splitlines()
    child, parent = json.loads(out[0]), json.loads(out[1])
    assert child["enabled"] is True
    assert child["frozen"] > 1000  # the launcher's objects stay out of the child's collections
    assert parent["parent_enabled"] is False  # the launcher itself only forks and exits

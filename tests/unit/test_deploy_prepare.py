"""``prepare`` runs the pulumi-aws modules the program uses before the program does.

It runs beside the servers' start (:meth:`sandbox.Sandbox.up`, when no kept stack is found), so
that the program's run does not wait for them. pulumi-aws imports each service lazily: an
``import_module`` of one reads no attribute and runs nothing, which is what ``prepare`` did.
"""

from __future__ import annotations

import subprocess
import sys

from tests.kit.paths import EXAMPLE, REPO

CHECK = f"""
from types import ModuleType
from controller.topology import load
from infra import aws
from sandbox.deploy.engine import prepare
lazy = lambda: sorted(n for n in aws.__all__
                      if isinstance(getattr(aws, n), ModuleType)
                      and type(getattr(aws, n)) is not ModuleType)
before = lazy()
prepare(load({str(EXAMPLE)!r}))
print(len(before), lazy())
"""


def test_prepare_leaves_no_pulumi_aws_module_of_the_program_unrun() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHECK], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lazy_before, lazy_after = done.stdout.split(maxsplit=1)
    assert int(lazy_before) >= 10  # the services the program uses, all still lazy at import
    assert lazy_after.strip() == "[]"

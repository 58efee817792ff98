"""The CLI's verb table (``controller.interfaces.cli.VERBS``) says what the verb modules register.

``failover --help`` lists the verbs from that table without importing them, so the table must
name every verb, the module that registers it, and the help its docstring gives.
"""

from __future__ import annotations

import json
import subprocess
import sys

from controller.interfaces.cli import VERBS

#: Imports every verb module in a fresh interpreter and prints, for each registered verb, the
#: module its code is in (a group's: its subcommands') and its one-line help.
REGISTRY = """
import importlib, json
from controller.interfaces.cli import VERBS, app
import inspect, typer
from controller.interfaces.cli.app import registered
for module in {module for module, _ in VERBS.values()}:
    importlib.import_module(f"controller.interfaces.cli.{module}")
def home(info):
    callback = info.callback or info.typer_instance.registered_commands[0].callback
    return callback.__module__.rsplit(".", 1)[1]
def summary(info):  # the first paragraph of a group's help= or a command's docstring
    if isinstance(info, typer.models.TyperInfo):
        text = info.help if isinstance(info.help, str) else info.typer_instance.info.help
    else:
        text = inspect.getdoc(info.callback)
    return " ".join(text.split("\\n\\n")[0].split())
print(json.dumps({name: [home(info), summary(info)] for name, info in registered(app).items()}))
"""


def test_every_verb_is_in_the_table_with_its_module_and_its_own_help() -> None:
    out = subprocess.run(
        [sys.executable, "-c", REGISTRY], capture_output=True, text=True, check=True
    ).stdout
    found = {name: tuple(entry) for name, entry in json.loads(out).items()}
    assert found == VERBS


def test_help_lists_every_verb_and_imports_none_of_their_modules() -> None:
    code = (
        "import sys; from controller.interfaces.cli import main; main(['--help'])\n"
        "print(sorted(m for m in sys.modules if m.endswith('_cmds')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.rstrip().endswith("[]"), out[-300:]
    listed = [line.split()[0] for line in out.split("Commands:")[1].splitlines() if line.strip()]
    assert listed[:-1] == list(VERBS)  # the last line is the printed module list


def test_a_verb_runs_after_its_module_is_imported_on_demand() -> None:
    code = (
        "import sys; from controller.interfaces.cli import main\n"
        "code = main(['runs', '--help'])\n"
        "print(code, sorted(m for m in sys.modules if m.endswith('_cmds')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "--json" in out  # the verb's own options: it was built
    # Its own module (the plan table execute renders is in plan_view): no other verb's.
    last = out.rstrip().splitlines()[-1]
    assert last == "0 ['controller.interfaces.cli.execute_cmds']", last

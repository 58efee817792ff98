"""A failover plan as the operator reads it: a table by level, then its degraded answers.

Shared by ``plan``, ``execute`` and ``drill``. Its own module, apart from the verbs that build a
plan: ``execute_cmds`` also holds ``runs`` and ``resume``, which only read a plan back and must
not import networkx (``tests/unit/test_lean_package.py``).
"""

from __future__ import annotations

from rich.table import Table

from controller.interfaces.cli.app import console
from controller.plan.steps import FailoverPlan


def render_plan(result: FailoverPlan) -> None:
    """Print a plan as a table grouped by level, then its degraded answers."""
    table = Table(
        title=f"{result.app}: fail over {result.source} -> {result.target}", show_lines=False
    )
    for column in ("level", "phase", "action", "component", "region"):
        table.add_column(column, no_wrap=True)
    table.add_column("waits for", overflow="fold")
    for steps in result.levels:
        for i, step in enumerate(steps):
            needs = (
                ", ".join(
                    result.step(n).component
                    for n in step.needs
                    if result.step(n).phase == step.phase
                )
                or "-"
            )
            table.add_row(
                str(step.level) if i == 0 else "",
                step.phase,
                step.action,
                step.component,
                step.region,
                needs,
                end_section=i == len(steps) - 1,
            )
    console.print(table)
    if result.degraded:
        console.print(
            "[yellow]degraded in the target:[/] "
            + ", ".join(f"{name} -> {mode.value}" for name, mode in sorted(result.degraded.items()))
        )
    console.print(
        f"{len(result.steps)} steps in {len(result.levels)} levels; each activation "
        "also waits for its own fence in the source"
    )

"""``python -m controller``: the same as the ``failover`` command."""

from controller.interfaces.cli import main

main()

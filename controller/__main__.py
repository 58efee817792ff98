"""``python -m controller``: the same as the ``failover`` command."""

from controller.cli import main

main()

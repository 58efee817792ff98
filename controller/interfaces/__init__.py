"""The interfaces: the ``failover`` CLI, the status page, and the views both render.

The top of the controller: nothing imports it but ``python -m controller``.
"""

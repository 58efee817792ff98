"""The control table and its items: the lease, the desired state, the automation switch, the
journal of runs and the watchers' states.

Each item is one module; :mod:`controller.controltable.table` reaches the table (the control
regions in turn, the majority rule, the fenced single-item writes). Called by the engine, the
watchers and the interfaces.
"""

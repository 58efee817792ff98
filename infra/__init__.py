"""The Pulumi program: deploys a topology into every region, secure by construction.

``__main__`` reads the stack config and calls :func:`infra.program.deploy`, which composes
``global_`` (what spans regions), ``regional`` (one region), ``function`` (one function with all
it owns) and ``api`` (one regional HTTP API). Imports ``controller.topology`` and nothing else of
the controller; creates nothing at import time.
"""

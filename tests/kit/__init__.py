"""The test kit: what several test modules share, kept out of the test modules themselves
(as kopf keeps its testing helpers in ``kopf/_kits``).

:mod:`~tests.kit.paths` names the repository and the example; :mod:`~tests.kit.cli` runs the
CLI in-process; :mod:`~tests.kit.manifests` makes manifests that reach nothing;
:mod:`~tests.kit.emulator` reads and faults the sandbox; :mod:`~tests.kit.loopback` serves a
test's own HTTP handler; :mod:`~tests.kit.watcher` stands in
for a deployed watcher's Lambda context and its items; :mod:`~tests.kit.pulumi_mocks` and
:mod:`~tests.kit.code_calls` run the Pulumi program under mocks. Fixtures stay in the
``conftest.py`` files, which import from here.
"""

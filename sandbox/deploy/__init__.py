"""The sandbox's deployment: the Pulumi program in ``infra/``, run against the emulator.

``failover sandbox up`` runs :func:`infra.program.deploy` in the Pulumi SDK's engine-less mode
(the resource monitor behind ``pulumi.runtime.set_mocks``): :mod:`.engine` is that monitor's
mocks, :mod:`.mapping` says what creating each resource type is, as the AWS calls pulumi-aws
makes for it, sent to the emulator server its provider names. Nothing else in the sandbox creates
a resource; :mod:`sandbox.account` sets up what an account has before ``pulumi up`` (its hosted
zone).
"""

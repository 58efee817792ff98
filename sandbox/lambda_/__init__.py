"""The sandbox's Lambda: every function runs from its deployed bundle, in processes of its own.

moto stores functions but does not run them; this package does, as Lambda does:

- :mod:`.invoke` is the one invoke path every caller takes (the API, the queue and stream
  pollers, the schedules, the watchers' schedule): it reads the function's deployed
  configuration back from the emulator and runs the invocation in an execution environment;
- :mod:`.environments` starts those environments: processes forked from a warm runtime that has
  imported only what the Lambda Python runtime ships (boto3, botocore and their dependencies),
  one pool per function and region;
- :mod:`.code` fetches each function's deployed zip from the emulator and lays out the runtime's
  own packages;
- :mod:`.bootstrap` is what runs inside an environment (standard library only, run isolated).
"""

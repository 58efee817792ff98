"""The sandbox's CloudWatch loop: what emits metrics, and the alarms evaluated from them.

moto stores metrics and alarms and never evaluates one; this package plays the rest, as AWS
runs it:

- :mod:`.evaluation` is CloudWatch's evaluation of one alarm, pure functions over its
  definition and its metric's samples (M out of N, the evaluation range, missing data);
- :mod:`.evaluator` runs inside each region's server process (its failure domain: a hung or
  killed region stops evaluating), evaluating every alarm the program deployed there on its
  period, changing its state with a reason and publishing to its actions' topics;
- :mod:`.metrics` is what the data plane emits where AWS emits it (Lambda's invocation metrics
  from the one invoke path, queue depths, the API's 5xx, replication latency), through the
  region's own ``PutMetricData``.
"""

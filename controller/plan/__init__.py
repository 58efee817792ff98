"""The plan: the dependency graph, the failover plan built from it, and how both are drawn.

Pure data over the topology, no AWS. Nothing is re-exported here: reading a journalled plan
(:mod:`controller.plan.steps`) must not import networkx, which the graph and the planning need,
nor must a watcher's calm evaluation, which plans through :mod:`controller.plan.planner`.
"""

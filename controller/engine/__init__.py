"""The engine: runs a plan under the lease (prechecks, levels, retries) and converges AWS
towards the desired state (the reconciler).

Called by the watchers and the interfaces; it calls the control table, health, the plan and the
actions.
"""

"""The orders service's business logic, free of Lambda: settings, modes, model, stores, answers.

Called by the three Lambda entry points (``api``, ``worker``, ``projector``) and by the local
data plane of the sandbox, which builds one :class:`~orders_core.service.Service` per
(function, region) and calls the entry points' ``handle(event, service)``.
"""

"""One module per resource kind, each implementing :class:`controller.actions.base.Action`."""

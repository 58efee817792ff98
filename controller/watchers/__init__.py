"""The watchers: the decision engine that turns health into failovers, and the Lambda entry
point ``pulumi up`` deploys in every region.
"""

"""A Lambda function: reserved concurrency, its ``live`` alias, and its event source mappings.

Fencing sets the reserved concurrency to 0 (nothing can run it) and disables its mappings;
activating restores the declared concurrency (or removes the reservation), makes sure the alias
exists and enables the mappings. State: ``fenced`` at concurrency 0, ``active`` when it can run
and every mapping is enabled, else ``standby``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from controller.actions import mapping
from controller.actions.base import Action, Observed, State, is_not_found, missing
from controller.contract import ALIAS, DegradedMode

if TYPE_CHECKING:
    from types_boto3_lambda.client import LambdaClient

log = logging.getLogger(__name__)


class FunctionAction(Action):
    """Switch a function on (concurrency, alias, mappings) or off (concurrency 0)."""

    kind = "function"

    @property
    def lambda_(self) -> LambdaClient:
        """The Lambda client of this region."""
        return self.clients.client("lambda", self.region)

    @property
    def alias(self) -> str:
        """The alias callers invoke."""
        return self.ref.alias or ALIAS

    def _read(self) -> Observed:
        name = self.ref.name
        try:
            got = self.lambda_.get_function(FunctionName=name)
        except Exception as exc:
            if is_not_found(exc):
                return missing(f"function {name}")
            raise
        config, concurrency = got["Configuration"], reserved(got)
        has_alias = self._has_alias()
        maps = mapping.read(self.lambda_, self.ref.mappings)
        facts = {
            "concurrency": concurrency,
            "alias": has_alias,
            "mappings": maps.states,
            "lambda_state": config.get("State", "Active"),
        }
        healthy = facts["lambda_state"] == "Active" and has_alias
        detail = "" if has_alias else f"alias {self.alias} missing"
        if concurrency == 0:
            state = State.FENCED
        elif maps.all_enabled:
            state = State.ACTIVE
        else:
            state = State.STANDBY
        return Observed(state, healthy=healthy, detail=detail, facts=facts)

    def _activate(self, mode: DegradedMode | None) -> None:
        name, seen = self.ref.name, self._seen()
        wanted = getattr(self.spec, "reserved_concurrency", None)
        current = seen["concurrency"]
        if wanted is not None and current != wanted:
            self.lambda_.put_function_concurrency(
                FunctionName=name, ReservedConcurrentExecutions=wanted
            )
        elif wanted is None and current is not None:
            self.lambda_.delete_function_concurrency(FunctionName=name)
        if not seen["alias"]:
            log.info("%s/%s: creating alias %s", self.component, self.region, self.alias)
            self.lambda_.create_alias(FunctionName=name, Name=self.alias, FunctionVersion="$LATEST")
        mapping.set_enabled(self.lambda_, self.ref.mappings, True, known=seen["mappings"])

    def _deactivate(self) -> None:
        seen = self._seen()
        if seen["concurrency"] != 0:
            self.lambda_.put_function_concurrency(
                FunctionName=self.ref.name, ReservedConcurrentExecutions=0
            )
        mapping.set_enabled(self.lambda_, self.ref.mappings, False, known=seen["mappings"])

    def _has_alias(self) -> bool:
        try:
            self.lambda_.get_alias(FunctionName=self.ref.name, Name=self.alias)
        except Exception as exc:
            if is_not_found(exc):
                return False
            raise
        return True


def reserved(got: Mapping[str, Any]) -> int | None:
    """The reserved concurrency in a ``GetFunction`` answer (0: fenced), None when none is
    reserved: Lambda answers it there, so no ``GetFunctionConcurrency`` is needed beside it.

    >>> reserved({"Concurrency": {"ReservedConcurrentExecutions": 0}}), reserved({})
    (0, None)
    """
    value = (got.get("Concurrency") or {}).get("ReservedConcurrentExecutions")
    return None if value is None else int(value)

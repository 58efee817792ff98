"""The regional HTTP API (API Gateway v2): it exists; traffic is moved by the DNS, not here."""

from __future__ import annotations

from typing import Any

from controller.actions.base import Observed, PassiveAction, State, is_not_found, missing


class ApiAction(PassiveAction):
    """Read an API's existence and endpoint."""

    kind = "api"

    def _read(self) -> Observed:
        apigw = self.clients.client("apigatewayv2", self.region)
        try:
            api = self._find(apigw)
        except Exception as exc:
            if is_not_found(exc):
                return missing(f"api {self.ref.name}")
            raise
        if api is None:
            return missing(f"api {self.ref.name}")
        return Observed(
            State.ACTIVE, facts={"api_id": api.get("ApiId"), "endpoint": api.get("ApiEndpoint")}
        )

    def _find(self, apigw: Any) -> dict[str, Any] | None:
        """The API by the id in the manifest's ARN, else by name among the region's APIs."""
        arn = self.ref.arn
        if "/apis/" in arn:
            found: dict[str, Any] = apigw.get_api(ApiId=arn.rsplit("/apis/", 1)[1].split("/")[0])
            return found
        token: str | None = None
        while True:
            page = apigw.get_apis(**({"NextToken": token} if token else {}))
            for api in page.get("Items", []):
                if self.ref.name in (api.get("Name"), api.get("ApiId")):
                    return dict(api)
            token = page.get("NextToken")
            if not token:
                return None

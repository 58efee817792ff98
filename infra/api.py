"""The regional HTTP API of one region.

Created by :class:`infra.regional.Region` for every api component: an API Gateway HTTP API with
a ``$default`` stage (access logs, throttling), one Lambda integration per function it routes to
(on the function's ``live`` alias), the health route open and every other route behind IAM or a
JWT authorizer; and, when a dns component points at it, the regional custom domain with its own
certificate, so that Route 53 can send the application's name to this region.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from controller.contract import ALIAS, fit
from controller.topology import Topology
from controller.topology.kinds import ApiSpec, Route
from infra import aws
from infra.common import InfraError, Ref, Settings

ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "latency": "$context.responseLatency",
        "error": "$context.integrationErrorMessage",
    }
)
AUTHORIZATION = {"iam": "AWS_IAM", "jwt": "JWT"}


def _slug(path: str) -> str:
    """A route path as part of a resource name: ``/orders/{id}`` -> ``orders-id``."""
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "root"


@dataclass(frozen=True)
class Domain:
    """The application's DNS name, its hosted zone, and its one certificate validation record.

    ``validation`` takes this region's certificate and returns the FQDN of the validation
    record: ACM asks for the same record for a name in every region of an account, so it is
    created once, for the whole stack (:meth:`infra.global_.GlobalData.validation_record`).
    """

    record: str
    zone_id: pulumi.Input[str]
    validation: Callable[[aws.acm.Certificate], pulumi.Output[str]]


@dataclass(frozen=True)
class ApiArgs:
    """What one API needs to be built in one region."""

    topology: Topology
    name: str
    spec: ApiSpec
    region: str
    functions: Mapping[str, Ref]
    settings: Settings
    domain: Domain | None = None

    @property
    def physical(self) -> str:
        """The API's AWS name in this region."""
        return fit(self.topology.physical_name(self.name, self.region), 128)


class RegionalApi(pulumi.ComponentResource):
    """An HTTP API in one region: open health route, authorized routes, optional custom domain.

    Pulumi's component shape: ``opts`` reaches every child (parented here, named from
    ``args``, so an alias on a renamed component keeps their URNs).
    """

    def __init__(
        self, name: str, args: ApiArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("failover:infra:Api", name, None, opts)
        self.args = args
        child = pulumi.ResourceOptions(parent=self)
        name = args.physical

        self.api = aws.apigatewayv2.Api(name, name=name, protocol_type="HTTP", opts=child)
        self.access_logs = aws.cloudwatch.LogGroup(
            f"{name}-access-logs",
            name=f"/aws/apigateway/{name}",
            retention_in_days=args.settings.log_retention_days,
            opts=child,
        )
        self.stage = aws.apigatewayv2.Stage(
            f"{name}-stage",
            api_id=self.api.id,
            name="$default",
            auto_deploy=True,
            access_log_settings=aws.apigatewayv2.StageAccessLogSettingsArgs(
                destination_arn=self.access_logs.arn, format=ACCESS_LOG_FORMAT
            ),
            default_route_settings=aws.apigatewayv2.StageDefaultRouteSettingsArgs(
                throttling_rate_limit=args.settings.api_throttle_rate,
                throttling_burst_limit=args.settings.api_throttle_burst,
            ),
            opts=child,
        )
        self.authorizer = self._jwt_authorizer()
        self.integrations: dict[str, aws.apigatewayv2.Integration] = {}
        self.routes = [self._route(r) for r in args.spec.routes if r.path != args.spec.health_path]
        self.routes.extend(self._health_route())
        self.endpoint: pulumi.Output[str] = self.api.api_endpoint
        self.domain = self._custom_domain() if args.domain else None
        self.register_outputs({"endpoint": self.endpoint})

    def _integration(self, function: str) -> aws.apigatewayv2.Integration:
        """One Lambda proxy integration per function, on its alias, with its invoke permission."""
        if function in self.integrations:
            return self.integrations[function]
        ref = self.args.functions.get(function)
        if ref is None:
            raise InfraError(self.args.name, f"route target {function!r} is not a function")
        name = f"{self.args.physical}-{function}"
        aws.lambda_.Permission(
            f"{name}-invoke",
            action="lambda:InvokeFunction",
            function=ref.name,
            qualifier=ALIAS,
            principal="apigateway.amazonaws.com",
            source_arn=pulumi.Output.concat(self.api.execution_arn, "/*/*"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        integration = aws.apigatewayv2.Integration(
            f"{name}-integration",
            api_id=self.api.id,
            integration_type="AWS_PROXY",
            integration_uri=ref.arn,
            payload_format_version="2.0",
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.integrations[function] = integration
        return integration

    def _jwt_authorizer(self) -> aws.apigatewayv2.Authorizer | None:
        """The JWT authorizer, when a route asks for one; its issuer comes from stack config."""
        if not any(r.auth == "jwt" for r in self.args.spec.routes):
            return None
        settings = self.args.settings
        if not settings.jwt_issuer or not settings.jwt_audience:
            raise InfraError(
                self.args.name,
                "a jwt route needs failover:jwtIssuer and failover:jwtAudience in the stack config",
            )
        return aws.apigatewayv2.Authorizer(
            f"{self.args.physical}-jwt",
            api_id=self.api.id,
            authorizer_type="JWT",
            identity_sources=["$request.header.Authorization"],
            jwt_configuration=aws.apigatewayv2.AuthorizerJwtConfigurationArgs(
                issuer=settings.jwt_issuer, audiences=list(settings.jwt_audience)
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _route(self, route: Route) -> aws.apigatewayv2.Route:
        """A business route: always authorized (IAM or JWT), never open."""
        if route.auth == "none":
            raise InfraError(
                self.args.name,
                f"route {route.method} {route.path} has auth none; "
                "only the health route may be open",
            )
        extra: dict[str, Any] = {}
        if route.auth == "jwt" and self.authorizer is not None:
            extra["authorizer_id"] = self.authorizer.id
        key = f"{route.method} {route.path}"
        return aws.apigatewayv2.Route(
            f"{self.args.physical}-{route.method}-{_slug(route.path)}",
            api_id=self.api.id,
            route_key=key,
            target=pulumi.Output.concat("integrations/", self._integration(route.function).id),
            authorization_type=AUTHORIZATION[route.auth],
            opts=pulumi.ResourceOptions(parent=self),
            **extra,
        )

    def _health_route(self) -> list[aws.apigatewayv2.Route]:
        """``GET <health_path>``, open, answered by the first routed function (it probes deps)."""
        spec = self.args.spec
        declared = [r for r in spec.routes if r.path == spec.health_path]
        target = (declared or list(spec.routes))[:1]
        if not target:
            return []
        return [
            aws.apigatewayv2.Route(
                f"{self.args.physical}-health",
                api_id=self.api.id,
                route_key=f"GET {spec.health_path}",
                target=pulumi.Output.concat(
                    "integrations/", self._integration(target[0].function).id
                ),
                authorization_type="NONE",
                opts=pulumi.ResourceOptions(parent=self),
            )
        ]

    def _custom_domain(self) -> aws.apigatewayv2.DomainName:
        """The application's name served by this region, with a DNS-validated certificate."""
        assert self.args.domain is not None
        domain = self.args.domain
        name = self.args.physical
        child = pulumi.ResourceOptions(parent=self)
        cert = aws.acm.Certificate(
            f"{name}-cert", domain_name=domain.record, validation_method="DNS", opts=child
        )
        validation = aws.acm.CertificateValidation(
            f"{name}-cert-valid",
            certificate_arn=cert.arn,
            validation_record_fqdns=[domain.validation(cert)],
            opts=child,
        )
        domain_name = aws.apigatewayv2.DomainName(
            f"{name}-domain",
            domain_name=domain.record,
            domain_name_configuration=aws.apigatewayv2.DomainNameDomainNameConfigurationArgs(
                certificate_arn=validation.certificate_arn,
                endpoint_type="REGIONAL",
                security_policy="TLS_1_2",
            ),
            opts=child,
        )
        aws.apigatewayv2.ApiMapping(
            f"{name}-mapping",
            api_id=self.api.id,
            domain_name=domain_name.id,
            stage=self.stage.id,
            opts=child,
        )
        return domain_name

"""What spans regions: replicated data, DNS failover, and the roles that operate the stack.

Composed by :func:`infra.program.deploy`: :class:`GlobalData` first (DynamoDB global tables, the
control table, replicated buckets, hosted zones), because every region needs their ARNs; then the
regions; then :class:`Traffic` (a health check per regional endpoint and Route 53 failover
records, so DNS fails over on health checks alone) and :class:`AccessRoles` (the controller's
role, allowed only what the controller does, and the separate deployer role).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi

from controller.contract import fit
from controller.topology import Kind, Topology
from controller.topology.kinds import BucketSpec, DnsSpec
from infra import aws
from infra.common import (
    Account,
    InfraError,
    Ref,
    Settings,
    assume_role_policy,
    deny,
    policy_json,
    provider_settings,
    statement,
)

CONTROL_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",  # an evaluation and a status read each read their items at once
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
)
FUNCTION_CONTROL = (
    "lambda:GetFunction",  # its answer holds the reserved concurrency too (0 when fenced)
    "lambda:GetFunctionConfiguration",
    "lambda:PutFunctionConcurrency",
    "lambda:DeleteFunctionConcurrency",
    "lambda:GetAlias",
    "lambda:UpdateAlias",
    # a function found without its alias gets one (controller.actions.function activates it)
    "lambda:CreateAlias",
)
#: What the controller's and the deployer's statements allow that changes a function.
FUNCTION_WRITES = (
    "lambda:PutFunctionConcurrency",
    "lambda:DeleteFunctionConcurrency",
    "lambda:UpdateAlias",
    "lambda:CreateAlias",
)
FUNCTION_DEPLOY_WRITES = ("lambda:UpdateFunctionCode", "lambda:PublishVersion")
FUNCTION_DEPLOY = (
    "lambda:UpdateFunctionCode",
    "lambda:PublishVersion",
    "lambda:GetFunction",
    "lambda:GetFunctionConfiguration",
    "lambda:GetAlias",
    "lambda:UpdateAlias",
)
REPLICATION_SOURCE = (
    "s3:GetObjectVersionForReplication",
    "s3:GetObjectVersionAcl",
    "s3:GetObjectVersionTagging",
)
REPLICATION_TARGET = ("s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags")


def _opts(
    parent: pulumi.Resource, provider: aws.Provider | None = None, **kw: Any
) -> pulumi.ResourceOptions:
    """A child's options: parented (it inherits protect and providers, moves with aliases);
    ``provider`` only where a multi-region component picks the region."""
    return pulumi.ResourceOptions(parent=parent, provider=provider, **kw)


#: pulumi-aws's limit on ``bucket_prefix`` (S3 adds a 26-character unique suffix, within 63).
BUCKET_PREFIX_MAX = 37


@dataclass(frozen=True)
class GlobalDataArgs:
    """What the cross-region data needs: the topology, the settings, a provider per region."""

    topology: Topology
    settings: Settings
    # One provider per region: a component spanning regions cannot take one from ``opts``.
    providers: Mapping[str, aws.Provider]
    account: Account


class GlobalData(pulumi.ComponentResource):
    """Global tables (a replica in every region), the control table, replicated buckets, zones.

    It spans regions, so each child names its region's provider from ``args.providers``;
    everything else in ``opts`` (``protect``, ``aliases``) reaches the children as usual.
    """

    def __init__(
        self, name: str, args: GlobalDataArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("failover:infra:GlobalData", name, None, opts)
        topology, settings, providers = args.topology, args.settings, args.providers
        self.topology = topology
        self.settings = settings
        self.providers = providers
        self.account = args.account
        primary = providers[topology.regions.primary]
        self.tables = {
            name: self._global_table(
                topology.physical_name(name, topology.regions.primary),
                spec.hash_key,
                spec.range_key,
                primary,
                protect=settings.protect_data,
            )
            for name, spec in topology.of_kind(Kind.TABLE)
        }
        # The journal and the lease: losing it mid-failover loses the run's memory.
        self.control_table = self._control_table(protect=settings.protect_data)
        self.buckets = {
            name: self._buckets(name, spec) for name, spec in topology.of_kind(Kind.BUCKET)
        }
        self.zone_ids: dict[str, pulumi.Input[str]] = {}
        for name, dns in topology.of_kind(Kind.DNS):
            if dns.zone not in self.zone_ids:
                self.zone_ids[dns.zone] = settings.zone_ids.get(dns.zone) or existing_zone(
                    name, dns.zone, primary
                )
        self._validations: dict[str, pulumi.Output[str]] = {}
        self.register_outputs({"control_table": self.control_table.name})

    def validation_record(
        self, domain: str, zone_id: pulumi.Input[str], certificate: aws.acm.Certificate
    ) -> pulumi.Output[str]:
        """The FQDN of ``domain``'s ACM validation record, created for the first certificate.

        ACM asks for the same CNAME for one name in every region of an account, so one record
        serves every regional certificate; owned here, not by a region, removing a region
        never deletes the record the other regions' certificates renew with.
        """
        if domain not in self._validations:
            option = certificate.domain_validation_options[0]
            record = aws.route53.Record(
                fit(f"{self.topology.app}-{domain}-cert-validation", 128),
                zone_id=zone_id,
                name=option.resource_record_name,
                type=option.resource_record_type,
                records=[option.resource_record_value],
                ttl=300,
                opts=_opts(self, self.providers[self.topology.regions.primary]),
            )
            self._validations[domain] = record.fqdn
        return self._validations[domain]

    def _global_table(
        self,
        name: str,
        hash_key: str,
        range_key: str | None,
        provider: aws.Provider,
        *,
        protect: bool,
        ttl: str | None = None,
    ) -> aws.dynamodb.Table:
        """A table in the primary with a replica in every standby: streams, PITR, encryption."""
        keys = [hash_key] + ([range_key] if range_key else [])
        return aws.dynamodb.Table(
            name,
            name=name,
            billing_mode="PAY_PER_REQUEST",
            hash_key=hash_key,
            range_key=range_key,
            attributes=[aws.dynamodb.TableAttributeArgs(name=k, type="S") for k in keys],
            # Global tables replicate through the stream: it is on whatever the spec says.
            stream_enabled=True,
            stream_view_type="NEW_AND_OLD_IMAGES",
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(enabled=True),
            deletion_protection_enabled=protect,
            ttl=aws.dynamodb.TableTtlArgs(attribute_name=ttl, enabled=True) if ttl else None,
            replicas=[
                aws.dynamodb.TableReplicaArgs(
                    region_name=r,
                    point_in_time_recovery=True,
                    propagate_tags=True,
                    deletion_protection_enabled=protect,
                )
                for r in self.topology.regions.standby
            ],
            opts=_opts(self, provider),
        )

    def _control_table(self, *, protect: bool) -> aws.dynamodb.Table:
        """The control table: multi-Region strong consistency (three replicas, or two and a
        witness, in one region set, as the topology's ``control`` says), and no TTL: the lease
        item is never deleted, so the fencing token never goes back."""
        control = self.topology.control_regions
        self.control_home = next(
            (r for r in control.replicas if r in self.providers), control.replicas[0]
        )
        provider = self.providers.get(self.control_home) or aws.Provider(
            f"{self.topology.app}-control-{self.control_home}",
            region=self.control_home,
            opts=pulumi.ResourceOptions(parent=self),
            **provider_settings(self.settings, self.control_home),
        )
        name = self.topology.control_table
        return aws.dynamodb.Table(
            name,
            name=name,
            billing_mode="PAY_PER_REQUEST",
            hash_key="pk",
            range_key="sk",
            attributes=[aws.dynamodb.TableAttributeArgs(name=k, type="S") for k in ("pk", "sk")],
            stream_enabled=True,
            stream_view_type="NEW_AND_OLD_IMAGES",
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(enabled=True),
            deletion_protection_enabled=protect,
            replicas=[
                aws.dynamodb.TableReplicaArgs(
                    region_name=r,
                    consistency_mode="STRONG",
                    point_in_time_recovery=True,
                    deletion_protection_enabled=protect,
                )
                for r in control.replicas
                if r != self.control_home
            ],
            global_table_witness=aws.dynamodb.TableGlobalTableWitnessArgs(
                region_name=control.witness
            )
            if control.witness
            else None,
            opts=_opts(self, provider),
        )

    def table_ref(self, name: str, region: str) -> Ref:
        """A table (or its replica) in ``region``: its name, ARN and stream ARN there."""
        return _table_ref(self.tables[name], region, self.topology.regions.primary)

    def control_arns(self) -> list[pulumi.Output[str]]:
        """The control table's ARN in every replica region (a witness serves no requests)."""
        return [
            pulumi.Output.from_input(_table_ref(self.control_table, r, self.control_home).arn)
            for r in self.topology.control_regions.replicas
        ]

    def _buckets(self, name: str, spec: BucketSpec) -> dict[str, aws.s3.Bucket]:
        """One private, encrypted, versioned bucket per region, each replicating to the others."""
        buckets: dict[str, aws.s3.Bucket] = {}
        versionings: list[pulumi.Resource] = []
        for region in self.topology.regions.all:
            provider = self.providers[region]
            physical = fit(self.topology.physical_name(name, region), 63)
            # Bucket names are global across every AWS account: a fixed name can be taken by
            # anyone. S3 completes the prefix with a unique suffix; the manifest reads the result.
            bucket = aws.s3.Bucket(
                physical,
                bucket_prefix=fit(f"{physical}-", BUCKET_PREFIX_MAX),
                opts=_opts(self, provider),
            )
            aws.s3.BucketPublicAccessBlock(
                f"{physical}-private",
                bucket=bucket.id,
                block_public_acls=True,
                block_public_policy=True,
                ignore_public_acls=True,
                restrict_public_buckets=True,
                opts=_opts(self, provider),
            )
            aws.s3.BucketServerSideEncryptionConfiguration(
                f"{physical}-sse",
                bucket=bucket.id,
                rules=[
                    aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                        apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                            sse_algorithm="AES256"
                        )
                    )
                ],
                opts=_opts(self, provider),
            )
            aws.s3.BucketPolicy(
                f"{physical}-tls-only",
                bucket=bucket.id,
                policy=policy_json(
                    [
                        {
                            "Sid": "DenyInsecureTransport",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [bucket.arn, pulumi.Output.concat(bucket.arn, "/*")],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ]
                ),
                opts=_opts(self, provider),
            )
            status = "Enabled" if spec.versioning else "Suspended"
            versionings.append(
                aws.s3.BucketVersioning(
                    f"{physical}-versioning",
                    bucket=bucket.id,
                    versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                        status=status
                    ),
                    opts=_opts(self, provider),
                )
            )
            buckets[region] = bucket
        if spec.versioning:  # replication needs versioning on both sides
            for region, bucket in buckets.items():
                self._replicate(name, region, bucket, buckets, versionings)
        return buckets

    def _replicate(
        self,
        name: str,
        region: str,
        source: aws.s3.Bucket,
        buckets: Mapping[str, aws.s3.Bucket],
        after: Sequence[pulumi.Resource],
    ) -> None:
        """Replicate ``source`` to the bucket of every other region, with a role of its own."""
        provider = self.providers[region]
        physical = fit(f"{self.topology.physical_name(name, region)}-replication", 64)
        targets = {r: b for r, b in buckets.items() if r != region}
        role = aws.iam.Role(
            physical,
            name=physical,
            assume_role_policy=assume_role_policy(
                "s3.amazonaws.com", source_account=self.account.account_id
            ),
            opts=_opts(self, provider),
        )
        policy = aws.iam.RolePolicy(
            physical,
            role=role.name,
            policy=policy_json(
                [
                    statement(("s3:GetReplicationConfiguration", "s3:ListBucket"), [source.arn]),
                    statement(REPLICATION_SOURCE, [pulumi.Output.concat(source.arn, "/*")]),
                    statement(
                        REPLICATION_TARGET,
                        [pulumi.Output.concat(b.arn, "/*") for b in targets.values()],
                    ),
                ]
            ),
            opts=_opts(self, provider),
        )
        aws.s3.BucketReplicationConfig(
            physical,
            bucket=source.id,
            role=role.arn,
            rules=[
                aws.s3.BucketReplicationConfigRuleArgs(
                    id=f"to-{target_region}",
                    status="Enabled",
                    priority=i,
                    filter=aws.s3.BucketReplicationConfigRuleFilterArgs(prefix=""),
                    delete_marker_replication=aws.s3.BucketReplicationConfigRuleDeleteMarkerReplicationArgs(
                        status="Enabled"
                    ),
                    destination=aws.s3.BucketReplicationConfigRuleDestinationArgs(
                        bucket=target.arn, storage_class="STANDARD"
                    ),
                )
                for i, (target_region, target) in enumerate(targets.items())
            ],
            opts=_opts(self, provider, depends_on=[policy, *after]),
        )

    def bucket_ref(self, name: str, region: str) -> Ref:
        """The bucket of ``name`` in ``region``."""
        bucket = self.buckets[name][region]
        return Ref(kind="bucket", name=bucket.bucket, arn=bucket.arn)


def existing_zone(component: str, zone: str, provider: aws.Provider) -> str:
    """The id of the public hosted zone ``zone`` in this account; refuse at once without one.

    The program never creates the zone: a new zone's name servers are delegated by nobody, so
    the certificates' DNS validation would never complete and ``pulumi up`` would hang.
    """
    try:
        found = aws.route53.get_zone(
            name=zone, private_zone=False, opts=pulumi.InvokeOptions(provider=provider)
        )
    except Exception as exc:  # the invoke's error type is the engine's; its text says why
        raise InfraError(
            component,
            f"no public hosted zone {zone!r} in this account: create "
            "it and delegate it from the parent domain, or give its id with "
            f"`pulumi config set --path 'failover:zoneIds[\"{zone}\"]' <id>`"
            f" ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})",
        ) from exc
    return str(found.zone_id)


def _table_ref(table: aws.dynamodb.Table, region: str, primary: str) -> Ref:
    if region == primary:
        return Ref(kind="table", name=table.name, arn=table.arn, stream_arn=table.stream_arn)

    def replica(attr: str) -> pulumi.Output[str]:
        return table.replicas.apply(
            lambda reps: next(getattr(r, attr) for r in reps or [] if r.region_name == region)
        )

    return Ref(kind="table", name=table.name, arn=replica("arn"), stream_arn=replica("stream_arn"))


@dataclass(frozen=True)
class Endpoint:
    """One region's API as DNS sees it: its own host name and its custom domain target."""

    host: pulumi.Input[str]
    target_domain: pulumi.Input[str]


@dataclass(frozen=True)
class TrafficArgs:
    """One dns component: its spec, its hosted zone, and each region's API endpoint."""

    topology: Topology
    component: str
    spec: DnsSpec
    zone_id: pulumi.Input[str]
    endpoints: Mapping[str, Endpoint]


class Traffic(pulumi.ComponentResource):
    """A health check per regional endpoint and failover records PRIMARY/SECONDARY.

    Route 53 moves the name to the secondary when the primary's health check fails, with or
    without a controller; the controller picks among three or more regions by rewriting the
    records (``primary``/``secondary`` set identifiers, CNAMEs to a region's custom domain) and
    inverting health checks. Route 53 is global: the provider comes in ``opts``.
    """

    def __init__(
        self, name: str, args: TrafficArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("failover:infra:Traffic", name, None, opts)
        topology, spec, zone_id = args.topology, args.spec, args.zone_id
        component, endpoints = args.component, args.endpoints
        self.spec = spec
        self.zone_id = zone_id
        hc = spec.health_check
        self.health_checks = {
            region: aws.route53.HealthCheck(
                f"{topology.physical_name(component, region)}-health",
                type="HTTPS",
                fqdn=endpoint.host,
                port=443,
                resource_path=hc.path,
                request_interval=hc.interval,
                failure_threshold=hc.threshold,
                enable_sni=True,
                invert_healthcheck=False,
                tags={"Name": f"{spec.name} {region}"},
                # the controller inverts a fenced region's check: `pulumi up` must not undo it
                opts=_opts(self, ignore_changes=["invert_healthcheck"]),
            )
            for region, endpoint in endpoints.items()
        }
        # The controller finds the records by failover role and keeps their set identifiers.
        self.set_identifiers = {
            topology.regions.primary: "primary",
            topology.regions.standby[0]: "secondary",
        }
        self.records = {
            region: aws.route53.Record(
                f"{topology.physical_name(component, 'global')}-{identifier}",
                zone_id=zone_id,
                name=spec.name,
                type="CNAME",
                ttl=spec.ttl,
                set_identifier=identifier,
                failover_routing_policies=[
                    aws.route53.RecordFailoverRoutingPolicyArgs(type=identifier.upper())
                ],
                health_check_id=self.health_checks[region].id,
                records=[endpoints[region].target_domain],
                # Created once: after that the controller points them (a failover must survive
                # the next `pulumi up`).
                opts=_opts(self, ignore_changes=["records", "health_check_id"]),
            )
            for region, identifier in self.set_identifiers.items()
            if region in endpoints
        }
        self.endpoints = endpoints
        self.register_outputs({"health_checks": {r: h.id for r, h in self.health_checks.items()}})


@dataclass
class Operated:
    """The ARNs of what the controller operates and the deployer deploys, across regions."""

    functions: list[pulumi.Input[str]] = field(default_factory=list)
    mappings: list[pulumi.Input[str]] = field(default_factory=list)
    rules: list[pulumi.Input[str]] = field(default_factory=list)
    queues: list[pulumi.Input[str]] = field(default_factory=list)
    streams: list[pulumi.Input[str]] = field(default_factory=list)
    buckets: list[pulumi.Input[str]] = field(default_factory=list)
    parameters: list[pulumi.Input[str]] = field(default_factory=list)
    apis: list[pulumi.Input[str]] = field(default_factory=list)
    tables: list[pulumi.Input[str]] = field(default_factory=list)
    control_tables: list[pulumi.Input[str]] = field(default_factory=list)
    zones: list[pulumi.Input[str]] = field(default_factory=list)
    health_checks: list[pulumi.Input[str]] = field(default_factory=list)
    #: Functions the patterns above match that neither role may change: the watchers.
    protected: list[pulumi.Input[str]] = field(default_factory=list)


def controller_statements(
    topology: Topology, account: Account, operated: Operated
) -> dict[str, list[dict[str, Any]]]:
    """What the controller does, by area: the controller role's policies, and every watcher's
    (infra.watchers), which runs the same executor and reconciler."""
    app = topology.prefix  # the stack's names: two stacks' roles and patterns stay apart
    regions = topology.regions.all
    return {
        "functions": [
            statement(FUNCTION_CONTROL, operated.functions),
            deny(FUNCTION_WRITES, operated.protected),
        ],
        "events": [
            statement(
                ("lambda:GetEventSourceMapping", "lambda:UpdateEventSourceMapping"),
                operated.mappings,
            ),
            statement(
                ("events:DescribeRule", "events:EnableRule", "events:DisableRule"), operated.rules
            ),
        ],
        "reads": [
            statement(("sqs:GetQueueAttributes", "sqs:GetQueueUrl"), operated.queues),
            statement(("kinesis:DescribeStreamSummary",), operated.streams),
            statement(("s3:GetBucketVersioning",), operated.buckets),
            statement(("ssm:GetParameter",), operated.parameters),
            statement(("apigateway:GET",), operated.apis),
            statement(("dynamodb:DescribeTable",), operated.tables),
            statement(
                ("cloudwatch:DescribeAlarms",),
                [account.arn("cloudwatch", r, f"alarm:{app}-*") for r in regions],
            ),
            # replication lag: CloudWatch has no resource-level permission for metrics
            statement(("cloudwatch:GetMetricStatistics",), ["*"]),
        ],
        "traffic": [
            statement(
                (
                    "route53:ChangeResourceRecordSets",
                    "route53:ListResourceRecordSets",
                    "route53:GetHostedZone",
                ),
                operated.zones,
            ),
            statement(
                (
                    "route53:GetHealthCheck",
                    "route53:GetHealthCheckStatus",
                    "route53:UpdateHealthCheck",
                ),
                operated.health_checks,
            ),
            statement(
                ("route53:GetChange",),
                [pulumi.Output.concat("arn:", account.partition, ":route53:::change/*")],
            ),
        ],
        "state": [
            statement(
                ("ssm:GetParameter", "ssm:GetParameters", "ssm:PutParameter"),
                [account.arn("ssm", r, f"parameter/failover/{app}/*") for r in regions],
            ),
            statement(CONTROL_ACTIONS, operated.control_tables),
        ],
    }


@dataclass(frozen=True)
class AccessRolesArgs:
    """Who may assume the roles (settings), and what they operate, across regions."""

    topology: Topology
    settings: Settings
    account: Account
    operated: Operated


class AccessRoles(pulumi.ComponentResource):
    """The controller's role (only the actions it takes) and the deployer's (code and alias).

    IAM is global: the provider comes in ``opts``, and every role and policy inherits it.
    """

    def __init__(
        self, name: str, args: AccessRolesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("failover:infra:AccessRoles", name, None, opts)
        topology, settings, account, operated = (
            args.topology,
            args.settings,
            args.account,
            args.operated,
        )
        app = topology.prefix  # the stack's names: two stacks' roles and patterns stay apart
        self.controller = self._role(
            fit(f"{app}-failover-controller", 64),
            settings.controller_principals,
            controller_statements(topology, account, operated),
        )
        self.deployer = self._role(
            fit(f"{app}-failover-deployer", 64),
            settings.deployer_principals,
            {
                "deploy": [
                    statement(FUNCTION_DEPLOY, operated.functions),
                    deny(FUNCTION_WRITES + FUNCTION_DEPLOY_WRITES, operated.protected),
                ]
            },
        )
        self.register_outputs(
            {
                "controller": self.controller.arn if self.controller else None,
                "deployer": self.deployer.arn if self.deployer else None,
            }
        )

    def _role(
        self,
        name: str,
        principals: Sequence[pulumi.Input[str]],
        policies: Mapping[str, list[dict[str, Any]]],
    ) -> aws.iam.Role | None:
        """A role with one managed policy per area (each stays under IAM's size limit).

        Trusted by the named principals only; with none configured the role is not created
        (trusting the account root would let every identity of the account that may call
        ``sts:AssumeRole`` act as the controller).
        """
        if not principals:
            pulumi.log.warn(
                f"{name}: no principals configured (failover:controllerPrincipals / "
                "failover:deployerPrincipals): the role is not created"
            )
            return None
        role = aws.iam.Role(
            name,
            name=name,
            assume_role_policy=assume_role_policy(principals=principals),
            opts=_opts(self),
        )
        for area, statements in policies.items():
            statements = [s for s in statements if s["Resource"]]
            if not statements:
                continue
            policy = aws.iam.Policy(
                f"{name}-{area}",
                name=fit(f"{name}-{area}", 128),
                policy=policy_json(statements),
                opts=_opts(self),
            )
            aws.iam.RolePolicyAttachment(
                f"{name}-{area}", role=role.name, policy_arn=policy.arn, opts=_opts(self)
            )
        return role

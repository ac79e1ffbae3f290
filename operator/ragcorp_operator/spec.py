"""A RagCorpDeployment's spec, parsed and defaulted into typed objects.

The CRD's schema applies the same defaults server-side; parsing them here too
means `ragcorp-operator render -f` works offline and a spec the API server let
through (an older CRD, a missing default) still cannot crash a reconcile: any
problem becomes a `SpecError` whose message names the field.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class SpecError(ValueError):
    """The spec cannot work; the message says which field and why."""


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class SecretKeyRef(Model):
    name: str = Field(min_length=1)
    key: str = Field(min_length=1)


class Secrets(Model):
    database_url: SecretKeyRef = Field(alias="databaseUrl")
    #: A read replica of databaseUrl: the service's searches read there (DATABASE_READ_URL).
    database_read_url: SecretKeyRef | None = Field(default=None, alias="databaseReadUrl")
    google_api_key: SecretKeyRef | None = Field(default=None, alias="googleApiKey")
    api_keys: SecretKeyRef | None = Field(default=None, alias="apiKeys")


class Autoscaling(Model):
    enabled: bool = False
    min_replicas: int = Field(default=2, ge=1, le=1000, alias="minReplicas")
    max_replicas: int = Field(default=10, ge=1, le=1000, alias="maxReplicas")
    target_cpu_utilization: int = Field(default=70, ge=1, le=100, alias="targetCPUUtilizationPercentage")

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError("autoscaling.minReplicas must not exceed autoscaling.maxReplicas")
        return self


class DbPool(Model):
    min_size: int = Field(default=2, ge=1, le=100, alias="minSize")
    max_size: int = Field(default=10, ge=1, le=200, alias="maxSize")

    @model_validator(mode="after")
    def _bounds(self) -> DbPool:
        if self.min_size > self.max_size:
            raise ValueError("config.dbPool.minSize must not exceed config.dbPool.maxSize")
        return self


class Otel(Model):
    enabled: bool = False
    endpoint: str = "http://localhost:4317"


class Config(Model):
    allowed_origins: list[str] = Field(default_factory=list, alias="allowedOrigins")
    rate_limit_rps: float = Field(default=20.0, gt=0, alias="rateLimitRps")
    db_pool: DbPool = Field(default_factory=DbPool, alias="dbPool")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(default="INFO", alias="logLevel")
    otel: Otel = Field(default_factory=Otel)
    embedding_model: str | None = Field(default=None, alias="embeddingModel")
    generation_model: str | None = Field(default=None, alias="generationModel")


class Probe(Model):
    initial_delay_seconds: int = Field(default=5, ge=0, alias="initialDelaySeconds")
    period_seconds: int = Field(default=10, ge=1, alias="periodSeconds")
    timeout_seconds: int = Field(default=3, ge=1, alias="timeoutSeconds")
    failure_threshold: int = Field(default=3, ge=1, alias="failureThreshold")


class Probes(Model):
    liveness: Probe = Field(default_factory=lambda: Probe(initialDelaySeconds=10))
    readiness: Probe = Field(default_factory=Probe)


class Scheduling(Model):
    node_selector: dict[str, str] = Field(default_factory=dict, alias="nodeSelector")
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    affinity: dict[str, Any] = Field(default_factory=dict)
    service_account_name: str | None = Field(default=None, alias="serviceAccountName")
    # Fields added after configs became revisions default to None, never to an empty value: the
    # pod config's hash leaves them out, so an operator upgrade starts no rollout of its own.
    topology_spread_constraints: list[dict[str, Any]] | None = Field(default=None, alias="topologySpreadConstraints")


#: Variables the operator sets from the spec (`render.config`): set them there, not in `spec.env`.
OPERATOR_ENV = frozenset(
    {
        "HOST",
        "PORT",
        "ALLOWED_ORIGINS",
        "RATE_LIMIT_RPS",
        "DB_POOL_MIN_SIZE",
        "DB_POOL_MAX_SIZE",
        "LOG_LEVEL",
        "OTEL_ENABLED",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "EMBEDDING_MODEL",
        "GENERATION_MODEL",
        "EMBEDDING_PROVIDER",
        "ALLOW_ANONYMOUS",
        "DATABASE_URL",
        "DATABASE_READ_URL",
        "GOOGLE_API_KEY",
        "API_KEYS",
    }
)


class EnvVar(Model):
    """A container's environment variable, as Kubernetes spells it."""

    name: str = Field(pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$", max_length=256)
    value: str | None = None
    value_from: dict[str, Any] | None = Field(default=None, alias="valueFrom")

    @model_validator(mode="after")
    def _not_the_operators(self) -> EnvVar:
        if self.name in OPERATOR_ENV:
            raise ValueError(f"{self.name} is set by the operator from the spec (config, secrets); set it there")
        if self.value is not None and self.value_from is not None:
            raise ValueError(f"{self.name}: give value or valueFrom, not both")
        return self


#: What `spec.notifications` can be told about (each is also a Kubernetes Event).
Trigger = Literal["started", "promoted", "aborted", "rolledBack", "migrationFailed", "degraded", "recovered"]
TRIGGERS: tuple[Trigger, ...] = get_args(Trigger)


class Notification(Model):
    """A webhook told about rollouts; its URL is a secret (a Slack webhook URL is a credential)."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    url: SecretKeyRef
    #: `slack`: an incoming webhook's `{"text": ...}`; `json`: the event's fields, for any receiver.
    format: Literal["slack", "json"] = "json"
    #: The triggers this target hears (default: all of them).
    on: list[Trigger] = Field(default_factory=lambda: list(TRIGGERS), min_length=1)


class LocalObjectReference(Model):
    name: str = Field(min_length=1)


class Backup(Model):
    enabled: bool = False
    pvc_name: str | None = Field(default=None, alias="pvcName")
    retention: int = Field(default=5, ge=1, le=100)
    #: pg_dump must be at least the server's major version.
    image: str = "postgres:17-alpine"

    @model_validator(mode="after")
    def _pvc(self) -> Backup:
        if self.enabled and not self.pvc_name:
            raise ValueError("migrations.backup.pvcName is required when backups are enabled")
        return self


class Migrations(Model):
    enabled: bool = True
    timeout_seconds: int = Field(default=600, ge=10, le=86_400, alias="timeoutSeconds")
    backup: Backup = Field(default_factory=Backup)
    downgrade_on_abort: bool = Field(default=False, alias="downgradeOnAbort")


class SmokeTest(Model):
    enabled: bool = True
    timeout_seconds: int = Field(default=300, ge=1, le=3600, alias="timeoutSeconds")


class MetricGate(Model):
    enabled: bool = False
    prometheus_url: str = Field(default="http://prometheus-operated.monitoring.svc:9090", alias="prometheusUrl")
    window_seconds: int = Field(default=300, ge=0, le=86_400, alias="windowSeconds")
    deadline_seconds: int = Field(default=900, ge=0, le=86_400, alias="deadlineSeconds")
    max_error_rate: float = Field(default=0.05, ge=0, le=1, alias="maxErrorRate")
    max_p95_seconds: float = Field(default=2.0, gt=0, alias="maxP95Seconds")
    on_no_data: Literal["wait", "pass", "fail"] = Field(default="wait", alias="onNoData")
    after_promotion: bool = Field(default=True, alias="afterPromotion")


AnalysisStage = Literal["prePromotion", "postPromotion"]
ANALYSIS_STAGES: tuple[AnalysisStage, ...] = get_args(AnalysisStage)
#: `result <op> number`: what an analysis check's `successCondition` may say (the CRD's pattern too).
CONDITION_PATTERN = r"^\s*result\s*(<=|>=|==|!=|<|>)\s*(-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?)\s*$"


class AnalysisMetric(Model):
    """A check a team defines (Argo Rollouts' AnalysisTemplate metric, Prometheus provider)."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    #: PromQL returning one number; `{{namespace}}`, `{{service}}` and `{{name}}` are filled in.
    query: str = Field(min_length=1, max_length=4096)
    success_condition: str = Field(alias="successCondition", pattern=CONDITION_PATTERN)
    interval_seconds: int = Field(default=60, ge=1, le=86_400, alias="intervalSeconds")
    initial_delay_seconds: int = Field(default=0, ge=0, le=86_400, alias="initialDelaySeconds")
    count: int = Field(default=3, ge=1, le=1000)
    failure_limit: int = Field(default=0, ge=0, le=1000, alias="failureLimit")
    inconclusive_limit: int = Field(default=0, ge=0, le=1000, alias="inconclusiveLimit")
    stages: list[AnalysisStage] = Field(default_factory=lambda: list(ANALYSIS_STAGES), min_length=1)
    #: Measured and reported, never acted on: try a check before it can stop a rollout.
    dry_run: bool = Field(default=False, alias="dryRun")


class Analysis(Model):
    #: Where the checks' queries go; the metric gate's Prometheus when unset.
    prometheus_url: str | None = Field(default=None, alias="prometheusUrl")
    metrics: list[AnalysisMetric] = Field(default_factory=list, max_length=20)


class BlueGreen(Model):
    auto_promote: bool = Field(default=True, alias="autoPromote")
    scale_down_delay_seconds: int = Field(default=300, ge=0, alias="scaleDownDelaySeconds")
    keep_previous: bool = Field(default=True, alias="keepPrevious")
    ready_timeout_seconds: int = Field(default=600, ge=1, alias="readyTimeoutSeconds")
    smoke_test: SmokeTest = Field(default_factory=SmokeTest, alias="smokeTest")
    metric_gate: MetricGate = Field(default_factory=MetricGate, alias="metricGate")
    analysis: Analysis = Field(default_factory=Analysis)
    history_limit: int = Field(default=10, ge=1, le=100, alias="historyLimit")
    auto_promotion_seconds: int | None = Field(default=None, ge=0, le=86_400, alias="autoPromotionSeconds")
    preview_replica_count: int | None = Field(default=None, ge=1, le=1000, alias="previewReplicaCount")
    abort_scale_down_delay_seconds: int = Field(default=30, ge=0, le=86_400, alias="abortScaleDownDelaySeconds")


class Strategy(Model):
    blue_green: BlueGreen = Field(default_factory=BlueGreen, alias="blueGreen")


class Monitoring(Model):
    prometheus_rule: bool = Field(default=True, alias="prometheusRule")
    service_monitor: bool = Field(default=True, alias="serviceMonitor")
    dashboards: bool = True
    #: A raw API key with the `metrics` scope for Prometheus, when the service has API_KEYS.
    metrics_key: SecretKeyRef | None = Field(default=None, alias="metricsKey")


class ServiceSpec(Model):
    port: int = Field(default=80, ge=1, le=65_535)
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    #: On both Services (a load balancer's settings, an ingress controller's hints).
    annotations: dict[str, str] | None = None


class Resources(Model):
    requests: dict[str, str | int] = Field(default_factory=lambda: dict[str, str | int](cpu="250m", memory="512Mi"))
    limits: dict[str, str | int] = Field(default_factory=lambda: dict[str, str | int](memory="1Gi"))


class Rollback(Model):
    #: A revision from status.history; 0 means the one before the active revision.
    to_revision: int = Field(default=0, ge=0, alias="toRevision")


class RagSpec(Model):
    image: str = Field(min_length=1)
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        default="IfNotPresent", alias="imagePullPolicy"
    )
    replicas: int = Field(default=2, ge=0, le=1000)
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)
    resources: Resources = Field(default_factory=Resources)
    secrets: Secrets
    config: Config = Field(default_factory=Config)
    probes: Probes = Field(default_factory=Probes)
    scheduling: Scheduling = Field(default_factory=Scheduling)
    migrations: Migrations = Field(default_factory=Migrations)
    strategy: Strategy = Field(default_factory=Strategy)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    service: ServiceSpec = Field(default_factory=ServiceSpec)
    rollback: Rollback | None = None
    #: Hold the rollout where it is (Argo Rollouts' `spec.paused`); `kubectl ragcorp pause|resume`.
    paused: bool = False
    #: More environment for every container the operator runs (FORWARDED_ALLOW_IPS behind an
    #: ingress, the service's request limits): part of the pod config, rolled out blue/green.
    env: list[EnvVar] | None = None
    image_pull_secrets: list[LocalObjectReference] | None = Field(default=None, alias="imagePullSecrets")
    #: Annotations of the serving Pods (Deployments' templates; Jobs' Pods do not get them).
    pod_annotations: dict[str, str] | None = Field(default=None, alias="podAnnotations")
    notifications: list[Notification] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names_once(self) -> RagSpec:
        for field, names in (
            ("env", [variable.name for variable in self.env or ()]),
            ("notifications", [target.name for target in self.notifications]),
            ("strategy.blueGreen.analysis.metrics", [m.name for m in self.strategy.blue_green.analysis.metrics]),
        ):
            if repeated := sorted({name for name in names if names.count(name) > 1}):
                raise ValueError(f"{field}: {', '.join(repeated)} given more than once")
        return self


def parse_spec(raw: dict[str, Any]) -> RagSpec:
    """The typed spec, or a SpecError listing each problem as `field.path: message`."""
    try:
        return RagSpec.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "spec"
            problems.append(f"spec.{where}: {str(error['msg']).removeprefix('Value error, ')}")
        raise SpecError("; ".join(problems)) from None

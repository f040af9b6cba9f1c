"""One typed settings object, read from `SLA_*` environment variables; code beats ambient env."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Bind addresses meaning "every interface": fine to listen on, useless to be reached at.
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


class Settings(BaseSettings):
    """Every knob of a worker. Unprefixed variables (Faust's `WEB_PORT` etc.) are ignored."""

    model_config = SettingsConfigDict(env_prefix="SLA_", frozen=True, extra="ignore")

    broker: str | None = Field(
        default=None,
        description="Kafka bootstrap servers (host:port,...); unset starts the embedded broker",
    )
    embedded_port: int = Field(
        default=9092, description="loopback port of the embedded broker when SLA_BROKER is unset"
    )
    app_id: str = "sla-stream"
    topic_prefix: str = "sla."
    partitions: int = Field(default=4, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    data_dir: Path = Path("data")
    web_host: str = Field(default="127.0.0.1", description="the address the web server binds")
    web_port: int = 6066
    web_url: str | None = Field(
        default=None,
        description="the URL other workers reach this one at (Faust's canonical URL: requests "
        "for data another worker owns are forwarded to it, and members are told apart by it); "
        "default http://<SLA_WEB_HOST>:<SLA_WEB_PORT>, or this machine's fully qualified name "
        "when SLA_WEB_HOST binds every interface (0.0.0.0 or ::)",
    )
    tick_interval: float = Field(default=0.5, gt=0)
    forecast_model: Path | None = Field(
        default=None, description="breach-risk model file (`sla-stream forecast train`)"
    )
    forecast_rescore_s: float = Field(
        default=30.0, gt=0, description="an open clock is re-scored on ticks at most this often"
    )
    max_event_bytes: int = Field(default=64 * 1024, gt=0)
    dead_letter_max_bytes: int = Field(
        default=256 * 1024,
        ge=4096,
        le=900_000,
        description="a dead letter's JSON stays under this many bytes: the copy of a larger "
        "original is cut (`truncated: true`); below the producer's 1,000,000-byte request limit",
    )
    dead_letter_max_ratio: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="past this share of dead letters among the last SLA_DEAD_LETTER_WINDOW "
        "messages of the events topic, the worker pauses that topic until told to resume; 1 "
        "never pauses",
    )
    dead_letter_window: int = Field(
        default=1000, ge=1, description="messages of the events topic the dead-letter ratio covers"
    )
    dead_letter_min_count: int = Field(
        default=100,
        ge=1,
        description="dead letters the window must hold before the ratio can pause the worker",
    )
    rebalance_timeout: float = Field(
        default=3.0, gt=0, description="seconds the group waits for its members to rejoin"
    )
    session_timeout: float = Field(
        default=6.0,
        ge=1,
        description="seconds without a heartbeat before the group drops a worker (Kafka's "
        "group.min.session.timeout.ms is 6 by default); the embedded broker also holds every "
        "join for half of it, so a restart waits that long for its partitions",
    )
    log_level: str = "info"
    recovery_consistency_check: bool | None = Field(
        default=None,
        description="Faust's recovery check; unset means off on the embedded broker, however "
        "reached (recognised by its cluster id; its end offsets are wrong after multi-record "
        "batches), and on for any other broker",
    )
    standby_replicas: int = Field(default=1, ge=0)
    outbox_window_s: float = Field(
        default=30.0, ge=0, description="effects younger than this are re-sent after a restart"
    )
    incident_retention: timedelta | None = Field(
        default=timedelta(days=90),
        description="how long an incident's record is kept after its last event once it is "
        "closed or cancelled (or never opened): ISO 8601 like P90D or PT12H; `never` keeps "
        "every record",
    )
    producer_linger_s: float = Field(default=0.005, ge=0)
    stream_buffer_maxsize: int = Field(default=32768, gt=0)
    commit_every: int = Field(default=10000, gt=0)
    commit_interval_s: float = Field(default=1.0, gt=0)
    event_batch: int = Field(
        default=1,
        gt=0,
        description="events the incident agent takes at most at once; each incident touched "
        "is written once per batch, and a batch's effects are sent together. 1 (the default) "
        "iterates one message at a time, as Faust does: with batches, two workers started "
        "together sometimes missed effects (tests with two workers, cause not found yet)",
    )
    event_batch_within_s: float = Field(
        default=0.05,
        gt=0,
        description="how long the incident agent waits to fill a batch (longer: larger "
        "batches, fewer writes and less CPU per event; each event waits at most this long)",
    )
    ingest_token_hashes: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="SHA-256 hex digests of the bearer tokens POST /api/v1/events accepts, "
        "comma-separated, each optionally `<digest>:<name>` (`sla-stream token hash`)",
    )
    max_request_bytes: int = Field(default=1024 * 1024, gt=0, description="HTTP body limit")
    ingest_ack_timeout_s: float = Field(default=10.0, gt=0)
    ingest_retry_after_s: int = Field(default=5, ge=1)
    admin_token_hashes: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="SHA-256 hex digests of the bearer tokens the admin routes accept "
        "(`POST /api/v1/admin/resume-events`); with none, those routes answer loopback only",
    )
    portal_token_hashes: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="portal bearer tokens as `<sha256 hex digest>:<customer_id>`, comma-separated "
        "(`sla-stream token hash`); each token sees only its customer's data",
    )
    viewer_token_hashes: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="viewer tokens (the dashboard and the read APIs) as `<sha256 hex digest>` or "
        "`<digest>:<name>`, comma-separated (`sla-stream token hash`); unset, the web server "
        "listens on loopback only, whatever SLA_WEB_HOST says",
    )
    cluster_secret: SecretStr | None = Field(
        default=None,
        # Its length is checked at startup (web/access.py), by an error that does not echo it.
        description="shared by every worker of the group and sent on every worker-to-worker "
        "request (`sla-stream token new` makes one); required with SLA_VIEWER_TOKEN_HASHES",
    )
    portal_recent_days: float = Field(
        default=30.0, ge=0, description="the portal lists incidents ended at most this long ago"
    )
    adherence_target: float = Field(
        default=0.95, gt=0, le=1, description="the adherence rate the dashboard draws as target"
    )
    capacity_report: Path | None = Field(
        default=None,
        description="the JSON file `sla-stream capacity --format json --out FILE` writes, which "
        "the page /capacity and GET /api/v1/capacity show (read again whenever it changes); "
        "unset, they say how to make one",
    )

    @field_validator("incident_retention", mode="before")
    @classmethod
    def _retention_never(cls, value: Any) -> Any:
        return None if isinstance(value, str) and value.strip().lower() == "never" else value

    @field_validator("incident_retention")
    @classmethod
    def _retention_positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("must be longer than zero (or `never`)")
        return value

    @field_validator(
        "ingest_token_hashes",
        "portal_token_hashes",
        "viewer_token_hashes",
        "admin_token_hashes",
        mode="before",
    )
    @classmethod
    def _split_token_hashes(cls, value: Any) -> Any:
        # Checked by `web.auth.TokenSet.parse` at startup, whose errors never echo the value:
        # pydantic's would print a token configured in clear by mistake.
        entries = value.split(",") if isinstance(value, str) else value
        return [e.strip() for e in entries if e.strip()]

    @field_validator("web_url")
    @classmethod
    def _web_url_routable(cls, value: str | None) -> str | None:
        if value is None:
            return None
        url = urlsplit(value)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError("expected an http(s) URL with a host, like http://worker-1:6066")
        if url.hostname in WILDCARD_HOSTS:
            raise ValueError(f"{url.hostname} is not an address another worker can reach")
        return value.rstrip("/")

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    @property
    def embedded(self) -> bool:
        return self.broker is None

    @property
    def consistency_check(self) -> bool:
        if self.recovery_consistency_check is not None:
            return self.recovery_consistency_check
        return not self.embedded

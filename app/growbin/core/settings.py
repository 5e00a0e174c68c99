"""One settings model for every process, read from ``GROWBIN_*`` environment variables.

Names follow docs/CONTRACTS.md. Outside development and test the model refuses insecure
values (missing database passwords, missing signing keys) instead of starting half-secured.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from growbin.core.domains import DOMAINS
from growbin.core.processes import API_PORT, OFFLINE_MODEL_PATH, WAL_FILE, WORKER_METRICS_PORT


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    LOCAL = "local"
    PRODUCTION = "production"


class DomainDatabaseSettings(BaseModel):
    """Database and owner role of one domain; name and user default to ``growbin_<domain>``."""

    name: str | None = None
    user: str | None = None
    password: SecretStr | None = None


class DatabaseSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=5432, ge=1, le=65535)
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = "prefer"
    pool_size: int = Field(default=5, ge=1, le=100)
    max_overflow: int = Field(default=5, ge=0, le=100)
    auth: DomainDatabaseSettings = Field(default_factory=DomainDatabaseSettings)
    users: DomainDatabaseSettings = Field(default_factory=DomainDatabaseSettings)
    scans: DomainDatabaseSettings = Field(default_factory=DomainDatabaseSettings)
    recycling: DomainDatabaseSettings = Field(default_factory=DomainDatabaseSettings)
    locations: DomainDatabaseSettings = Field(default_factory=DomainDatabaseSettings)
    chat: DomainDatabaseSettings = Field(default_factory=DomainDatabaseSettings)

    @model_validator(mode="after")
    def _default_names(self) -> DatabaseSettings:
        for domain in DOMAINS:
            section: DomainDatabaseSettings = getattr(self, domain)
            section.name = section.name or f"growbin_{domain}"
            section.user = section.user or f"growbin_{domain}"
        return self

    def for_domain(self, domain: str) -> DomainDatabaseSettings:
        if domain not in DOMAINS:
            raise ValueError(f"unknown domain {domain!r}; expected one of {', '.join(DOMAINS)}")
        return getattr(self, domain)


class RedisSettings(BaseModel):
    url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")


class BrokerSettings(BaseModel):
    url: SecretStr = SecretStr("amqp://127.0.0.1:5672/growbin")


class AuthSettings(BaseModel):
    # PEM keys. Ed25519 (EdDSA) or RSA (RS256); the algorithm follows the key type.
    jwt_private_key: SecretStr | None = None
    jwt_public_key: str | None = None
    issuer: str = "growbin-auth"
    audience: str = "growbin"
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=3600)
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=300, le=90 * 24 * 3600)
    # Login limits (policy in app/README.md, "auth"). Per window of login_window_seconds: the
    # attempts of one client address, and the failed logins of one account from one address.
    login_max_attempts_per_client: int = Field(default=30, ge=1)
    login_max_failures_per_account_and_client: int = Field(default=5, ge=1)
    login_window_seconds: int = Field(default=300, ge=1)
    # Past this many failed logins of an account from all addresses together, each address
    # gets one attempt at it per backoff interval (base, doubling per failure, up to max), its
    # first one after an interval. Failures are forgotten after backoff_window_seconds without one.
    login_backoff_after_account_failures: int = Field(default=20, ge=1)
    login_backoff_base_seconds: int = Field(default=15, ge=1)
    login_backoff_max_seconds: int = Field(default=300, ge=1)
    login_backoff_window_seconds: int = Field(default=3600, ge=1)
    # Sign-ups per window: attempts from one client address, accounts created per email domain.
    signup_max_attempts_per_client: int = Field(default=30, ge=1)
    signup_max_accounts_per_email_domain: int = Field(default=300, ge=1)
    signup_window_seconds: int = Field(default=3600, ge=1)
    password_min_length: int = Field(default=10, ge=8, le=128)

    @field_validator("jwt_private_key", "jwt_public_key", mode="before")
    @classmethod
    def _unescape_pem(cls, value: object) -> object:
        # Env files keep one variable per line, so PEM keys arrive with "\n" escapes.
        if isinstance(value, str) and "\\n" in value:
            return value.replace("\\n", "\n")
        return value

    @model_validator(mode="after")
    def _backoff_is_bounded(self) -> AuthSettings:
        if self.login_backoff_max_seconds < self.login_backoff_base_seconds:
            raise ValueError(
                "login_backoff_max_seconds must be at least login_backoff_base_seconds"
            )
        # An address's turn must outlive its wait, or every attempt would be a first one.
        if self.login_backoff_window_seconds <= self.login_backoff_max_seconds:
            raise ValueError("login_backoff_window_seconds must exceed login_backoff_max_seconds")
        return self


class StorageSettings(BaseModel):
    backend: Literal["s3", "filesystem"] = "filesystem"
    bucket: str | None = None
    endpoint_url: str | None = None
    root: str = "/var/lib/growbin/objects"
    public_base_url: str | None = None
    region: str | None = None
    presign_ttl_seconds: int = Field(default=600, ge=60, le=3600)


class LlmSettings(BaseModel):
    api_key: SecretStr | None = None
    base_url: str | None = None
    model: str = "gpt-4o-mini"
    timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    # The exported ONNX model of the offline classifier (scripts/export-vision-model.sh).
    offline_model_path: str = OFFLINE_MODEL_PATH


class ApiSettings(BaseModel):
    """How `growbin api DOMAIN` serves: uvicorn's options, the same in both runtimes."""

    host: str = "0.0.0.0"  # noqa: S104 - pods listen on their own address; systemd sets the private one
    port: int = Field(default=API_PORT, ge=1, le=65535)
    # Peers whose X-Forwarded-For/-Proto are believed (the edge or the ALB subnets), as a
    # comma-separated list of addresses or CIDRs. "*" is refused: it lets any client forge
    # its address past the per-address login limit.
    forwarded_allow_ips: str = "127.0.0.1"
    # Above the ALB's 60 s idle timeout, so the load balancer, not uvicorn, closes idle
    # connections (otherwise a request can race a close and get a 502).
    keepalive_seconds: int = Field(default=75, ge=1, le=3600)
    # Event streams last at most 300 s; a stopping process lets them finish.
    graceful_shutdown_seconds: int = Field(default=310, ge=1, le=3600)
    processes: int = Field(default=1, ge=1, le=16)

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _no_wildcard(cls, value: str) -> str:
        entries = [entry.strip() for entry in value.split(",") if entry.strip()]
        if not entries:
            raise ValueError("name at least one trusted proxy address")
        if "*" in entries:
            raise ValueError('"*" trusts every client\'s X-Forwarded-For; name the proxies')
        return ",".join(entries)


class WorkerSettings(BaseModel):
    wal_path: str = WAL_FILE
    metrics_port: int = Field(default=WORKER_METRICS_PORT, ge=1, le=65535)
    # Celery worker processes of `growbin worker QUEUE`.
    concurrency: int = Field(default=2, ge=1, le=64)
    # Tries per task before the scan ends `failed`; waits grow as base * 2^n, with jitter.
    max_attempts: int = Field(default=5, ge=1, le=20)
    retry_base_seconds: float = Field(default=2.0, gt=0, le=300)
    retry_max_seconds: float = Field(default=120.0, gt=0, le=3600)
    drain_interval_seconds: float = Field(default=0.5, gt=0, le=60)


class ScansSettings(BaseModel):
    max_upload_bytes: int = Field(default=15 * 1024 * 1024, ge=1024)
    # Images above this many pixels are refused before they are decoded (decompression bombs).
    max_pixels: int = Field(default=40_000_000, ge=10_000)
    normalized_max_side: int = Field(default=1600, ge=256, le=8192)
    thumbnail_max_side: int = Field(default=320, ge=64, le=1024)
    # Below this confidence a scan asks the user to choose among the top candidates.
    min_confidence: float = Field(default=0.55, ge=0, le=1)
    # The outbox relay publishes scan tasks as soon as a scan is accepted in this process; it
    # also looks for pending ones this often (left by another process or a broker outage).
    outbox_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    outbox_batch_size: int = Field(default=100, ge=1, le=10_000)


class ChatSettings(BaseModel):
    max_message_chars: int = Field(default=2000, ge=1, le=8000)
    # Messages one user may send per window, across all of their conversations.
    messages_per_window: int = Field(default=20, ge=1)
    window_seconds: int = Field(default=60, ge=1, le=86400)
    # Estimated tokens of earlier turns sent with a question; older turns are left out.
    history_token_budget: int = Field(default=1500, ge=100, le=100_000)
    max_answer_tokens: int = Field(default=600, ge=16, le=4096)


class DeploySettings(BaseModel):
    # Load the fictional sample drop-off points (local runs); production imports real ones.
    seed_sample_locations: bool = False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GROWBIN_", env_nested_delimiter="__", extra="ignore", frozen=False
    )

    environment: Environment = Environment.DEVELOPMENT
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    llm: LlmSettings = Field(default_factory=LlmSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    scans: ScansSettings = Field(default_factory=ScansSettings)
    chat: ChatSettings = Field(default_factory=ChatSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    deploy: DeploySettings = Field(default_factory=DeploySettings)

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION

    @property
    def docs_enabled(self) -> bool:
        return not self.is_production

    # Database passwords are checked when a domain's engine is built (core.db): a service only
    # receives the credentials of its own database.
    @model_validator(mode="after")
    def _refuse_insecure(self) -> Settings:
        if self.environment in (Environment.DEVELOPMENT, Environment.TEST):
            return self
        problems = []
        if self.auth.jwt_public_key is None:
            problems.append("GROWBIN_AUTH__JWT_PUBLIC_KEY is required")
        if self.is_production and self.database.sslmode in ("disable", "allow"):
            problems.append("GROWBIN_DATABASE__SSLMODE must not be disable/allow in production")
        if problems:
            raise ValueError(f"insecure settings for {self.environment}: " + "; ".join(problems))
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()

"""Service configuration, read from the environment (and `.env`) once per process.

Every name here is documented in `.env.example`; the contract fixes the names.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Public push services of Chrome, Firefox, Safari and Edge: the endpoints a real
# browser hands out. Anything else must be allow-listed explicitly (SSRF guard).
DEFAULT_WEB_PUSH_ALLOWLIST = (
    "https://fcm.googleapis.com/,"
    "https://updates.push.services.mozilla.com/,"
    "https://web.push.apple.com/,"
    "https://*.notify.windows.com/"
)


# Seconds of a push lease kept for recording outcomes after the last send may start.
LEASE_RECORD_MARGIN_SECONDS = 1.0


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    # Infrastructure. Empty means "start the embedded servers under .data/" (serve/worker only).
    database_url: str = ""
    redis_url: str = ""
    # REDIS_URL names one node of a Redis Cluster (7+); the client discovers the others.
    redis_cluster: bool = False
    data_dir: Path = Path(".data")

    # Identity
    # No default: `messenger serve`/`worker` refuse to start without one when DATABASE_URL is
    # set, and the quick start generates one under DATA_DIR (see `secrets.resolve_jwt_secret`).
    jwt_secret: str = ""
    jwt_algorithm: str = "HS256"
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=3600)
    service_api_key: str = ""

    # Limits against hostile or broken clients (README: "Security and failure modes")
    max_body_bytes: int = Field(default=65536, ge=1024)
    message_rate_per_minute: int = Field(default=120, ge=1)
    conversation_rate_per_minute: int = Field(default=30, ge=1)
    device_tests_per_minute: int = Field(default=6, ge=1)
    max_participants: int = Field(default=10000, ge=2)
    ws_max_connections_per_user: int = Field(default=10, ge=1)
    # Every Redis call gives up after this long (connect, read, waiting for a pooled connection).
    redis_timeout_seconds: float = Field(default=2.0, gt=0, le=30)
    # PostgreSQL connections of the request path, per process; requests beyond wait for one.
    database_pool_size: int = Field(default=20, ge=1, le=1000)

    # Browsers on these origins may call the API (comma-separated, e.g. https://app.example.com).
    cors_allow_origins: str = ""

    # Behaviour
    push_include_content: bool = True
    presence_ttl_seconds: int = Field(default=60, ge=2)
    device_idle_days: int = Field(default=90, ge=1)
    inactive_device_retention_days: int = Field(default=30, ge=1)
    prune_interval_seconds: int = Field(default=86400, ge=1)
    prune_batch_size: int = Field(default=5000, ge=1)
    push_max_attempts: int = Field(default=5, ge=1)
    push_lease_seconds: int = Field(default=30, ge=1)
    push_sweep_interval_seconds: float = Field(default=1.0, gt=0)
    push_send_timeout_seconds: float = Field(default=10.0, gt=0)
    push_retry_base_seconds: float = Field(default=1.0, ge=0)
    push_retry_max_seconds: float = Field(default=60.0, ge=0)
    push_retry_after_cap_seconds: float = Field(default=300.0, ge=0)
    # FCM and Web Push requests in flight per provider (an HTTP/1.1 connection each): at a
    # 50 ms round trip 100 capped a provider near 2,000/s and measured 1,507 for FCM; 150: 1,764.
    push_concurrency_per_provider: int = Field(default=150, ge=1)
    # APNs multiplexes up to 1,000 streams on one HTTP/2 connection: more pushes in flight cost
    # no connections. At a 50 ms round trip 150 in flight held APNs alone near 2,000 pushes/s
    # (the answers' queueing adds to the round trip); 300 measured 2,490-2,557.
    apns_concurrency: int = Field(default=300, ge=1)
    # Separate capacity for /devices/test and /internal/notify (never taken from message pushes).
    push_interactive_concurrency: int = Field(default=10, ge=1)
    push_max_age_seconds: int = Field(default=3600, ge=1)
    push_apps_file: str = ""
    push_claim_batch_size: int = Field(default=500, ge=1)
    # Recipients in a fan-out's first page (later pages double, up to 8x): the first pushes go
    # out while later pages are written, and no statement grows with the audience.
    push_fanout_batch_size: int = Field(default=1000, ge=1)
    device_registrations_per_minute: int = Field(default=30, ge=1)
    max_active_devices_per_user: int = Field(default=50, ge=1)
    notification_retention_days: int = Field(default=90, ge=1)
    # Raw push jobs/deliveries are kept this long, then rolled up into hourly statistics.
    push_delivery_retention_days: int = Field(default=7, ge=1, le=3650)
    notification_batch_size: int = Field(default=1000, ge=1, le=50_000)
    notification_sweep_interval_seconds: float = Field(default=1.0, gt=0)

    # FCM (HTTP v1, service account)
    fcm_credentials_file: str = ""
    fcm_project_id: str = ""
    fcm_endpoint: str = "https://fcm.googleapis.com/v1"

    # APNs (token auth)
    apns_key_path: str = ""
    apns_key_id: str = ""
    apns_team_id: str = ""
    apns_topic: str = ""
    apns_use_sandbox: bool = False
    apns_host: str = ""
    apns_ca_file: str = ""

    # Web Push (VAPID)
    web_push_private_key: str = ""
    web_push_public_key: str = ""
    web_push_claims_email: str = ""
    web_push_endpoint_allowlist: str = DEFAULT_WEB_PUSH_ALLOWLIST
    web_push_ca_file: str = ""

    # Email (SMTP). Without SMTP_HOST email is off: nothing is queued and no digest is sent.
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    email_from: str = "Messenger <no-reply@localhost>"
    email_unsubscribe_url: str = ""
    email_max_attempts: int = Field(default=8, ge=1)
    email_lease_seconds: int = Field(default=120, ge=1)
    email_sweep_interval_seconds: float = Field(default=1.0, gt=0)
    email_retry_base_seconds: float = Field(default=1.0, ge=0)
    email_retry_max_seconds: float = Field(default=300.0, ge=0)
    email_batch_size: int = Field(default=50, ge=1)
    digest_check_interval_seconds: float = Field(default=30.0, gt=0)
    digest_batch_size: int = Field(default=500, ge=1)

    @model_validator(mode="after")
    def _sends_fit_in_their_lease(self) -> Settings:
        """A send that outlives its lease may be taken over and pushed twice: refuse that."""
        # Sends may start during the first half (at least one send timeout) of the lease.
        needed = 2 * self.push_send_timeout_seconds + LEASE_RECORD_MARGIN_SECONDS
        if self.push_lease_seconds < needed:
            raise ValueError(
                f"PUSH_LEASE_SECONDS ({self.push_lease_seconds}) must be at least "
                f"2 x PUSH_SEND_TIMEOUT_SECONDS + {LEASE_RECORD_MARGIN_SECONDS:g} ({needed:g}) so that "
                "every send and the recording of its outcome end within the lease"
            )
        return self

    @field_validator("jwt_audience", "jwt_issuer", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @cached_property
    def web_push_allowlist(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.web_push_endpoint_allowlist.split(",") if p.strip())

    @cached_property
    def cors_origins(self) -> tuple[str, ...]:
        return tuple(o.strip().rstrip("/") for o in self.cors_allow_origins.split(",") if o.strip())

    @property
    def web_push_claims_sub(self) -> str:
        email = self.web_push_claims_email.strip()
        if not email or email.startswith(("mailto:", "https:")):
            return email
        return f"mailto:{email}"

    @property
    def email_enabled(self) -> bool:
        return bool(self.smtp_host)

    @property
    def fcm_configured(self) -> bool:
        return bool(self.fcm_credentials_file)

    @property
    def apns_configured(self) -> bool:
        return bool(
            self.apns_key_path and self.apns_key_id and self.apns_team_id and self.apns_topic
        )

    @property
    def web_push_configured(self) -> bool:
        return bool(self.web_push_private_key and self.web_push_public_key)


def sqlalchemy_url(url: str) -> str:
    """Accept the usual `postgres://` / `postgresql://` spellings and pin the asyncpg driver."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url

"""Configuration from the environment: one `settings` object, `OKR_` prefix."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OKR_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OKR_DATABASE_URL", "DATABASE_URL"),
        description="PostgreSQL URL of a role that owns the schema (runs migrations).",
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OKR_REDIS_URL", "REDIS_URL"),
        description="Redis URL for the arq queue and pub/sub.",
    )
    app_role: str = Field(
        default="okr_app",
        description=(
            "Role the API and worker act as (a connection startup parameter), so that "
            "row-level security applies. Empty when DATABASE_URL already logs in as a "
            "role that neither owns the tables nor bypasses RLS."
        ),
    )
    secret_keys: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OKR_SECRET_KEYS", "OKR_SECRET_KEY"),
        description=(
            "Keys that encrypt webhook signing secrets at rest: base64url of 32 bytes "
            "each (`okr secret-key`), comma-separated, newest first. Keep them out of "
            "the database and its backups; `okr dev` makes one under its data directory."
        ),
    )
    dev: bool = Field(default=False, description="Dev mode: GraphiQL hints, field suggestions.")
    cors_origins: str = Field(
        default="",
        description=(
            "Origins whose browser apps may call /graphql (CORS) and open its websocket: "
            "comma-separated `scheme://host[:port]`, or `*` for any. Empty (the default): "
            "none but the API's own, except that dev mode (`okr dev`) allows "
            "http://localhost and http://127.0.0.1 on any port."
        ),
    )
    statement_timeout_ms: int = Field(default=5000, description="Per-statement timeout.")
    anonymous_burst: int = Field(
        default=30, description="Requests without a token a client address may send at once."
    )
    anonymous_per_second: float = Field(
        default=1.0, description="Requests without a token a client address regains per second."
    )
    clock_offset_seconds: float = Field(
        default=0.0,
        description=(
            "Seconds added to the wall clock wherever scores, cycles and the worker "
            "read the time (`okrgraph.domain.clock.now`); for tests and rehearsals "
            "of a date, 0 in production."
        ),
    )
    db_pool_size: int = 10
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(
        default=1, ge=1, le=64, description="Processes `okr serve` runs (uvicorn workers)."
    )
    outbox_retention_hours: float = Field(
        default=168,
        gt=0,
        description=(
            "How long an outbox event is kept once every consumer is done with it "
            "(pending recalculation events are never pruned); the worker prunes hourly."
        ),
    )
    smtp_host: str | None = Field(
        default=None,
        description=(
            "SMTP server the worker sends e-mail notifications through. Unset: mail goes "
            "to OKR_MAIL_FILE when that is set, otherwise e-mail sends give up at once."
        ),
    )
    smtp_port: int = Field(default=587, gt=0, lt=65536, description="The SMTP server's port.")
    smtp_username: str | None = Field(default=None, description="SMTP login, if it needs one.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password.")
    smtp_from: str = Field(
        default="okrgraph <okrgraph@localhost>",
        description="The From address of e-mail notifications.",
    )
    smtp_tls: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description=(
            "`starttls`: upgrade the connection with STARTTLS, which the server must offer "
            "(port 587); `tls`: TLS from the first byte (port 465); `none`: plain text "
            "(a relay on localhost)."
        ),
    )
    mail_file: str | None = Field(
        default=None,
        description=(
            "With no OKR_SMTP_HOST: append e-mail notifications to this mbox file instead "
            "of sending them (`okr dev` uses <data dir>/mail.mbox)."
        ),
    )

    def allowed_origins(self) -> tuple[tuple[str, ...], str | None]:
        """The CORS policy: explicit origins, and a pattern of origins (dev mode's
        localhost when no origins are set)."""
        origins = tuple(o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip())
        if not origins and self.dev:
            return (), DEV_ORIGINS
        return origins, None


# Origins `okr dev` allows when OKR_CORS_ORIGINS is not set: local frontends' dev servers.
DEV_ORIGINS = r"https?://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]{1,5})?"


settings = Settings()

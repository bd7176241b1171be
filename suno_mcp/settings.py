"""Settings, read once at start-up from the environment; keyword arguments win.

``GPTPROTO_API_KEY`` and ``GPTPROTO_BASE_URL`` are the vendor's names; everything of
our own starts with ``SUNO_MCP_``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from suno_mcp.domain.catalog import DEFAULT_MODEL
from suno_mcp.domain.errors import ConfigurationError
from suno_mcp.domain.spending import Budget, ConfirmMode, parse_budget, parse_prices

DEFAULT_BASE_URL = "https://gptproto.com"

# Named time limits (seconds). A tool call must return before common MCP clients give
# up on it (about 60 s), so the longest wait a tool may spend is below that.
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 30.0
MAX_WAIT_S = 50.0
DEFAULT_WAIT_S = 45.0
DUPLICATE_WINDOW_S = 600.0
# A task whose status has not moved for this long is reported stalled (the vendor's slowest
# documented songs take about 10 minutes).
STALL_AFTER_S = 30 * 60.0
DOWNLOAD_MAX_BYTES = 200 * 1024 * 1024
EMBED_MAX_BYTES = 2 * 1024 * 1024
TENANT_SECRET_MIN = 16
# Automatic downloads running at once; the rest wait in a queue (each running one holds a connection).
AUTO_DOWNLOAD_CONCURRENCY = 3
# A team-mode tenant's key and rate limiter stay in memory this long after their last use.
TENANT_IDLE_S = 3600.0

# Where a vendor's audio and cover images are served from: the in-chat player's content-security
# policy allows exactly these (plus the sandbox's own address when sandboxed). cdn1 is the host the
# vendor's examples show; cdn2 serves Suno's images and audiopipe its streaming previews.
DEFAULT_MEDIA_ORIGINS = ("https://cdn1.suno.ai", "https://cdn2.suno.ai", "https://audiopipe.suno.ai")
_ORIGIN = re.compile(
    r"^https?://(\*\.)?[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^http://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$"
)

_HOST_NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$|^[0-9a-f:.]+$")

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def default_data_dir() -> Path:
    """The per-user data directory for this application (differs by OS)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("suno-mcp", appauthor=False))


class Settings(BaseModel):
    """Everything the server can be told, already validated."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_key: SecretStr | None = None
    base_url: str = DEFAULT_BASE_URL
    api: Literal["task", "clip"] = "task"
    default_model: str = DEFAULT_MODEL
    extra_models: tuple[str, ...] = ()
    log_level: LogLevel = "INFO"
    data_dir: Path = Field(default_factory=default_data_dir)
    connect_timeout: float = Field(default=CONNECT_TIMEOUT_S, gt=0, le=300)
    read_timeout: float = Field(default=READ_TIMEOUT_S, gt=0, le=600)
    max_wait: float = Field(default=MAX_WAIT_S, ge=0, le=600)
    default_wait: float = Field(default=DEFAULT_WAIT_S, ge=0, le=600)
    duplicate_window: float = Field(default=DUPLICATE_WINDOW_S, ge=0)
    auto_download: bool = False
    auto_download_concurrency: int = Field(default=AUTO_DOWNLOAD_CONCURRENCY, ge=1, le=64)
    embed_audio: bool = False
    download_max_bytes: int = Field(default=DOWNLOAD_MAX_BYTES, gt=0)
    max_requests_per_second: float = Field(default=10.0, gt=0)  # a ceiling: the poller adapts below it
    stall_after_s: float = Field(default=STALL_AFTER_S, gt=0)
    http_token: SecretStr | None = None
    # The HTTP door under load: open connections (the oldest still sending its request head is closed
    # to make room), seconds a request head may take, seconds a request body may take once its head is
    # in, tool calls at once (past it: 503 + Retry-After).
    http_max_connections: int = Field(default=256, ge=1, le=100_000)
    http_header_timeout_s: float = Field(default=10.0, gt=0, le=600)
    http_body_timeout_s: float = Field(default=30.0, gt=0, le=600)
    http_max_calls: int = Field(default=32, ge=1, le=10_000)
    # Public names a reverse proxy in front forwards as Host (the DNS-rebinding check refuses others).
    http_allowed_hosts: tuple[str, ...] = ()
    # A libpq URL for a PostgreSQL ledger shared by replicas; it may hold a password, so it is secret.
    database_url: SecretStr | None = None
    # Team mode (HTTP only): each request pays with its caller's own key, rows are kept per tenant.
    keys: Literal["server", "per-request"] = "server"
    tenant_secret: SecretStr | None = None
    # How team-mode callers prove who they are: their gptproto key as the bearer credential ("key"),
    # an OAuth sign-in where they paste it once ("oauth"), or both.
    auth: tuple[Literal["key", "oauth"], ...] = ("key",)
    # The address people reach this server at (what they paste in their client, without /mcp):
    # the OAuth issuer and the resource tokens are bound to.
    public_url: str | None = None
    # The secret the signed-in keys are sealed under (None: derived from SUNO_MCP_TENANT_SECRET).
    auth_secret: SecretStr | None = None
    tenant_max_rps: float = Field(default=2.0, gt=0)  # upstream requests per second per tenant (a ceiling)
    tenant_max_calls: int = Field(default=8, ge=1, le=10_000)  # tool calls at once per tenant
    # How long an idle tenant's key and limiter are kept in memory (its next call brings the key again).
    tenant_idle_s: float = Field(default=TENANT_IDLE_S, gt=0)
    # Operators' Prometheus metrics on a listener of their own (None: off; 0: any free port).
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    # Stateless streamable HTTP (any replica answers any request); None: on in team mode or with a
    # shared database, off otherwise.
    http_stateless: bool | None = None
    sandbox: bool = False
    expected_preview_s: float = Field(default=30.0, gt=0, le=3600)
    expected_complete_s: float = Field(default=120.0, gt=0, le=7200)
    media_origins: tuple[str, ...] = DEFAULT_MEDIA_ORIGINS
    prices: dict[str, float] = Field(default_factory=dict)  # per request kind, in the user's currency
    budget: Budget | None = None
    confirm: ConfirmMode = "over-budget"

    @field_validator("prices", mode="before")
    @classmethod
    def _parse_prices(cls, value: Any) -> Any:
        return parse_prices(value) if isinstance(value, str) else value

    @field_validator("budget", mode="before")
    @classmethod
    def _parse_budget(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_budget(value) if value.strip() else None
        return value

    @model_validator(mode="after")
    def _cost_needs_prices(self) -> Settings:
        if self.budget is not None and self.budget.cost and not self.prices:
            raise ValueError(
                f"SUNO_MCP_BUDGET={self.budget.text} limits the cost, which needs prices: set "
                "SUNO_MCP_PRICES (e.g. music=0.10,lyrics=0.01,concat=0.10) or count requests (e.g. 20/day)"
            )
        return self

    @model_validator(mode="after")
    def _team_mode_needs_secret(self) -> Settings:
        if self.keys != "per-request":
            return self
        secret = self.tenant_secret.get_secret_value() if self.tenant_secret else ""
        if len(secret) < TENANT_SECRET_MIN:
            raise ValueError(
                "SUNO_MCP_KEYS=per-request needs SUNO_MCP_TENANT_SECRET: a random secret of at least "
                f"{TENANT_SECRET_MIN} characters (e.g. from `openssl rand -hex 32`), the same on every "
                "replica; tenant ids are derived from it, so keep it once chosen"
            )
        if self.http_token is not None:
            raise ValueError(
                "SUNO_MCP_KEYS=per-request and SUNO_MCP_HTTP_TOKEN both claim the Authorization header: "
                "in team mode each caller's gptproto key is their credential, so unset SUNO_MCP_HTTP_TOKEN"
            )
        return self

    @model_validator(mode="after")
    def _oauth_needs_team_mode(self) -> Settings:
        if not self.auth:
            raise ValueError("SUNO_MCP_AUTH: name at least one of key, oauth (e.g. SUNO_MCP_AUTH=oauth,key)")
        if "oauth" not in self.auth:
            return self
        if self.keys != "per-request":
            raise ValueError(
                "SUNO_MCP_AUTH=oauth signs people in with their own gptproto key, which is team mode: "
                "also set SUNO_MCP_KEYS=per-request and SUNO_MCP_TENANT_SECRET"
            )
        if self.public_url is None:
            raise ValueError(
                "SUNO_MCP_AUTH=oauth needs SUNO_MCP_PUBLIC_URL: the https address people reach this server "
                "at, without /mcp (e.g. https://suno.example.com); tokens are bound to it"
            )
        if self.auth_secret is not None and len(self.auth_secret.get_secret_value()) < TENANT_SECRET_MIN:
            raise ValueError(
                f"SUNO_MCP_AUTH_SECRET must be a random secret of at least {TENANT_SECRET_MIN} characters "
                "(e.g. from `openssl rand -hex 32`), the same on every replica"
            )
        return self

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        loopback = (parts.hostname or "") in ("localhost", "127.0.0.1", "::1")
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise ValueError(
                f"{value!r} must be an https:// address (plain http only for localhost while trying it)"
            )
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError(f"{value!r}: give scheme, host, port and path only (no query, fragment or user)")
        return value.removesuffix("/mcp")

    @property
    def oauth(self) -> bool:
        """People sign in with OAuth (SUNO_MCP_AUTH names oauth)."""
        return "oauth" in self.auth

    @property
    def bearer_keys(self) -> bool:
        """Team-mode callers may send their gptproto key as the bearer credential."""
        return "key" in self.auth

    @property
    def team_mode(self) -> bool:
        """Each request brings its caller's own key (SUNO_MCP_KEYS=per-request)."""
        return self.keys == "per-request"

    @property
    def stateless_http(self) -> bool:
        """Whether the HTTP transport keeps no sessions (so any replica can answer any request)."""
        if self.http_stateless is not None:
            return self.http_stateless
        return self.team_mode or self.database_url is not None

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("GPTPROTO_BASE_URL must start with http:// or https://")
        return value

    @field_validator("media_origins")
    @classmethod
    def _check_media_origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(origin.strip().rstrip("/") for origin in value if origin.strip())
        for origin in cleaned:
            if not _ORIGIN.match(origin):
                raise ValueError(
                    f"{origin!r} is not an origin: give scheme and host only, e.g. https://cdn1.suno.ai "
                    "(a port is allowed, a path is not)"
                )
        return cleaned

    @field_validator("http_allowed_hosts")
    @classmethod
    def _check_allowed_hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(name.strip().lower() for name in value if name.strip())
        for name in cleaned:
            if not _HOST_NAME.match(name):
                raise ValueError(
                    f"{name!r} is not a host name: give the name clients use, e.g. suno.example.com "
                    "(no scheme, port or path)"
                )
        return cleaned

    @field_validator("api_key", "http_token", "database_url", "tenant_secret", "auth_secret", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value.strip() if isinstance(value, str) else value

    @property
    def has_key(self) -> bool:
        return self.api_key is not None

    @property
    def audio_dir(self) -> Path:
        return self.data_dir / "audio"

    @property
    def journal_dir(self) -> Path:
        """Where accepted submits wait while the ledger cannot record them (one file per process)."""
        return self.data_dir / "journal"

    @property
    def ledger_path(self) -> Path:
        return self.data_dir / "tasks.sqlite3"


# Environment variable -> Settings field.
_ENV: dict[str, str] = {
    "GPTPROTO_API_KEY": "api_key",
    "GPTPROTO_BASE_URL": "base_url",
    "SUNO_MCP_API": "api",
    "SUNO_MCP_DEFAULT_MODEL": "default_model",
    "SUNO_MCP_EXTRA_MODELS": "extra_models",
    "SUNO_MCP_LOG_LEVEL": "log_level",
    "SUNO_MCP_DATA_DIR": "data_dir",
    "SUNO_MCP_CONNECT_TIMEOUT": "connect_timeout",
    "SUNO_MCP_READ_TIMEOUT": "read_timeout",
    "SUNO_MCP_MAX_WAIT": "max_wait",
    "SUNO_MCP_DEFAULT_WAIT": "default_wait",
    "SUNO_MCP_DUPLICATE_WINDOW": "duplicate_window",
    "SUNO_MCP_AUTO_DOWNLOAD": "auto_download",
    "SUNO_MCP_AUTO_DOWNLOAD_CONCURRENCY": "auto_download_concurrency",
    "SUNO_MCP_EMBED_AUDIO": "embed_audio",
    "SUNO_MCP_DOWNLOAD_MAX_BYTES": "download_max_bytes",
    "SUNO_MCP_MAX_RPS": "max_requests_per_second",
    "SUNO_MCP_HTTP_TOKEN": "http_token",
    "SUNO_MCP_DATABASE_URL": "database_url",
    "SUNO_MCP_HTTP_MAX_CONNECTIONS": "http_max_connections",
    "SUNO_MCP_HTTP_HEADER_TIMEOUT_S": "http_header_timeout_s",
    "SUNO_MCP_HTTP_BODY_TIMEOUT_S": "http_body_timeout_s",
    "SUNO_MCP_HTTP_MAX_CALLS": "http_max_calls",
    "SUNO_MCP_HTTP_ALLOWED_HOSTS": "http_allowed_hosts",
    "SUNO_MCP_EXPECTED_PREVIEW_S": "expected_preview_s",
    "SUNO_MCP_EXPECTED_COMPLETE_S": "expected_complete_s",
    "SUNO_MCP_STALL_AFTER_S": "stall_after_s",
    "SUNO_MCP_MEDIA_ORIGINS": "media_origins",
    "SUNO_MCP_PRICES": "prices",
    "SUNO_MCP_BUDGET": "budget",
    "SUNO_MCP_CONFIRM": "confirm",
    "SUNO_MCP_KEYS": "keys",
    "SUNO_MCP_TENANT_SECRET": "tenant_secret",
    "SUNO_MCP_AUTH": "auth",
    "SUNO_MCP_PUBLIC_URL": "public_url",
    "SUNO_MCP_AUTH_SECRET": "auth_secret",
    "SUNO_MCP_TENANT_MAX_RPS": "tenant_max_rps",
    "SUNO_MCP_TENANT_MAX_CALLS": "tenant_max_calls",
    "SUNO_MCP_TENANT_IDLE_S": "tenant_idle_s",
    "SUNO_MCP_METRICS_PORT": "metrics_port",
    "SUNO_MCP_METRICS_HOST": "metrics_host",
    "SUNO_MCP_HTTP_STATELESS": "http_stateless",
}
ENV_FOR_FIELD = {field: env for env, field in _ENV.items()}


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build Settings from the environment, with keyword overrides taking precedence.

    Raises ConfigurationError naming the variable and the fix when a value is invalid.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, field in _ENV.items():
        raw = env.get(name)
        if raw is None or raw == "":
            continue
        if field == "auth":
            values[field] = tuple(
                dict.fromkeys(part.strip().lower() for part in raw.split(",") if part.strip())
            )
        elif field in ("extra_models", "media_origins", "http_allowed_hosts"):
            values[field] = tuple(part.strip() for part in raw.split(",") if part.strip())
        elif field in ("api", "confirm", "keys"):
            values[field] = raw.strip().lower()
        elif field == "log_level":
            values[field] = raw.strip().upper()
        else:
            values[field] = raw
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        settings = Settings(**values)
    except ValidationError as err:
        problems = []
        for item in err.errors():
            field = str(item["loc"][0]) if item["loc"] else "?"
            where = ENV_FOR_FIELD.get(field, field)
            message = str(item["msg"]).removeprefix("Value error, ")
            problems.append(message if field == "?" or message.startswith(where) else f"{where}: {message}")
        raise ConfigurationError("invalid settings: " + "; ".join(problems)) from err
    if settings.default_wait > settings.max_wait:
        settings = settings.model_copy(update={"default_wait": settings.max_wait})
    return settings

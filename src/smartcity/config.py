"""Runtime settings: where the data lives and the limits every endpoint enforces.

Every command resolves the database the same way: an explicit ``--database URL``, else
``SMARTCITY_DATABASE_URL``, else a SQLite file under ``$SMARTCITY_HOME`` (default ``./.smartcity``).
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path


def smartcity_home() -> Path:
    return Path(os.environ.get("SMARTCITY_HOME", ".smartcity")).expanduser()


def resolve_database_url(explicit: str | None = None) -> str:
    if explicit:
        return explicit
    env = os.environ.get("SMARTCITY_DATABASE_URL")
    if env:
        return env
    home = smartcity_home()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(home / 'smartcity.db').resolve()}"


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class Limits:
    """Request limits; each breach is answered with a 400/413 ProblemDetails naming the limit."""

    max_body_bytes: int = 8 * 1024 * 1024
    max_json_depth: int = 32
    max_page_limit: int = 1000
    default_page_limit: int = 20
    max_q_length: int = 4096
    max_geometry_points: int = 10_000
    max_batch_entities: int = 5_000
    max_context_bytes: int = 512 * 1024
    context_fetch_timeout: float = 3.0
    # Remote @context fetches under way at once (in all, and to one host); a request that
    # finds no free slot within the timeout gets 503 LdContextNotAvailable.
    context_fetch_concurrency: int = 8
    context_fetches_per_host: int = 2
    # Temporal API: at most this many instances per attribute (and datasetId) in one response;
    # beyond it the answer is 206 Partial Content with a Content-Range (clause 6.3.10).
    # SMARTCITY_TEMPORAL_INSTANCE_LIMIT overrides it.
    max_temporal_instances: int = 10_000
    # The longest one entity query may run in the database (seconds): on PostgreSQL a
    # statement_timeout, on SQLite a progress-handler deadline. Past it the client gets
    # 403 TooComplexQuery. SMARTCITY_QUERY_TIMEOUT overrides it.
    query_timeout: float = 10.0
    # Rendered retrieve-by-id bodies kept per worker process (hub/body_cache.py), in bytes;
    # 0 turns the cache off. SMARTCITY_RENDER_CACHE_MB overrides it.
    render_cache_bytes: int = 32 * 1024 * 1024


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw and raw.strip() else default


def _env_rate(name: str, default: tuple[int, int]) -> tuple[int, int]:
    """A rate limit written ``EVENTS/SECONDS`` (e.g. ``5/600``: five in any ten minutes)."""
    raw = os.environ.get(name)
    if not raw or not raw.strip():
        return default
    events, _, seconds = raw.strip().partition("/")
    return int(events), int(seconds)


@dataclass
class FeedbackSettings:
    """Public feedback (smartcity.portal.feedback): moderation, anti-abuse limits, the secret.

    Rates are (events, seconds) sliding windows, stored in the database so they hold across
    processes. ``secret`` keys the hashes of voter tokens and IP addresses and signs CSRF tokens;
    None means ``SMARTCITY_SECRET``, else on PostgreSQL the one kept in the database (shared by
    every node), else ``$SMARTCITY_HOME/secret`` (created once, mode 0600).
    """

    reports_to_hide: int = 3
    premoderation: bool = False
    max_links: int = 2
    max_text_chars: int = 5000
    comment_rate_session: tuple[int, int] = (5, 600)
    # Generous per address: many people share one address (mobile carriers' NAT, schools).
    comment_rate_ip: tuple[int, int] = (30, 3600)
    reaction_rate_session: tuple[int, int] = (60, 3600)
    reaction_rate_ip: tuple[int, int] = (300, 3600)
    privacy_rate_ip: tuple[int, int] = (10, 3600)
    privacy_rate_email: tuple[int, int] = (3, 86400)
    privacy_token_ttl: int = 24 * 3600
    # Votes: a person proves an e-mail address by a link (one address, one vote per comment).
    vote_token_ttl: int = 24 * 3600
    vote_mail_rate_ip: tuple[int, int] = (20, 3600)
    vote_mail_rate_email: tuple[int, int] = (10, 86400)
    # Where the links in privacy e-mails point (the public site's address).
    public_url: str = "http://127.0.0.1:8000"
    secret: str | None = None

    @classmethod
    def from_env(cls) -> FeedbackSettings:
        d = cls()
        return cls(
            reports_to_hide=_env_int("SMARTCITY_FEEDBACK_REPORTS_TO_HIDE", d.reports_to_hide),
            premoderation=_env_bool("SMARTCITY_FEEDBACK_PREMODERATION", d.premoderation),
            max_links=_env_int("SMARTCITY_FEEDBACK_MAX_LINKS", d.max_links),
            comment_rate_session=_env_rate(
                "SMARTCITY_FEEDBACK_RATE_COMMENT_SESSION", d.comment_rate_session
            ),
            comment_rate_ip=_env_rate("SMARTCITY_FEEDBACK_RATE_COMMENT_IP", d.comment_rate_ip),
            reaction_rate_session=_env_rate(
                "SMARTCITY_FEEDBACK_RATE_REACTION_SESSION", d.reaction_rate_session
            ),
            reaction_rate_ip=_env_rate("SMARTCITY_FEEDBACK_RATE_REACTION_IP", d.reaction_rate_ip),
            privacy_rate_ip=_env_rate("SMARTCITY_FEEDBACK_RATE_PRIVACY_IP", d.privacy_rate_ip),
            privacy_rate_email=_env_rate(
                "SMARTCITY_FEEDBACK_RATE_PRIVACY_EMAIL", d.privacy_rate_email
            ),
            vote_mail_rate_ip=_env_rate(
                "SMARTCITY_FEEDBACK_RATE_VOTE_MAIL_IP", d.vote_mail_rate_ip
            ),
            vote_mail_rate_email=_env_rate(
                "SMARTCITY_FEEDBACK_RATE_VOTE_MAIL_EMAIL", d.vote_mail_rate_email
            ),
            public_url=os.environ.get("SMARTCITY_PUBLIC_URL", d.public_url),
            secret=os.environ.get("SMARTCITY_SECRET") or None,
        )


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw and raw.strip() else default


@dataclass
class NotificationSettings:
    """How the hub delivers notifications (hub/subscriptions/outbox.py).

    A failed notification is retried after ``retry_base`` seconds, doubling up to ``retry_cap``
    (then every ``retry_cap`` seconds) while its subscription is active: the cap bounds how long
    a receiver that came back waits for what it missed. A delivery worker holds the
    notifications it is sending for ``lease`` seconds, renewed while it works: a process that
    dies leaves them to the others within about that long.
    """

    retry_base: float = 1.0
    retry_cap: float = 60.0
    lease: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_base <= self.retry_cap:
            raise ValueError(
                "notification retries need 0 < SMARTCITY_NOTIFY_RETRY_BASE <= "
                f"SMARTCITY_NOTIFY_RETRY_CAP (got {self.retry_base} and {self.retry_cap})"
            )
        if self.lease <= 0:
            raise ValueError(f"SMARTCITY_NOTIFY_LEASE must be positive (got {self.lease})")

    @classmethod
    def from_env(cls) -> NotificationSettings:
        d = cls()
        return cls(
            retry_base=_env_float("SMARTCITY_NOTIFY_RETRY_BASE", d.retry_base),
            retry_cap=_env_float("SMARTCITY_NOTIFY_RETRY_CAP", d.retry_cap),
            lease=_env_float("SMARTCITY_NOTIFY_LEASE", d.lease),
        )


@dataclass
class SessionSettings:
    """The site's sign-in sessions (server-side records, portal/users/sessions.py), in seconds.

    ``lifetime``: a session ends this long after signing in, whatever the user does
    (``SMARTCITY_SESSION_LIFETIME``); ``idle``: ... or after this long without a request
    (``SMARTCITY_SESSION_IDLE``)."""

    lifetime: int = 12 * 3600
    idle: int = 30 * 60

    def __post_init__(self) -> None:
        if self.lifetime < 60 or self.idle < 60:
            raise ValueError(
                "SMARTCITY_SESSION_LIFETIME and SMARTCITY_SESSION_IDLE are seconds, at least 60"
            )

    @classmethod
    def from_env(cls) -> SessionSettings:
        try:
            lifetime = _env_int("SMARTCITY_SESSION_LIFETIME", cls.lifetime)
            idle = _env_int("SMARTCITY_SESSION_IDLE", cls.idle)
        except ValueError:
            raise ValueError(
                "SMARTCITY_SESSION_LIFETIME and SMARTCITY_SESSION_IDLE are whole seconds"
            ) from None
        return cls(lifetime=lifetime, idle=idle)


def parse_trusted_proxies(raw: str) -> tuple[str, ...]:
    """``SMARTCITY_TRUSTED_PROXIES`` (or ``serve --trusted-proxies``): the addresses or networks
    of the reverse proxies whose ``X-Forwarded-For`` / ``X-Forwarded-Proto`` are believed,
    comma-separated (``10.0.0.5,10.1.0.0/16``; ``*`` trusts everyone). None by default, so a
    client cannot choose the address that the per-IP limits count."""
    found: list[str] = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        if part != "*":
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise ValueError(
                    f"SMARTCITY_TRUSTED_PROXIES / --trusted-proxies: {part!r} is not an IP "
                    "address or network (e.g. 10.0.0.5, 10.1.0.0/16) or *"
                ) from None
        found.append(part)
    return tuple(found)


@dataclass
class OpenDataSettings:
    """The open data portal (smartcity.opendata): where uploads live and what they may be.

    ``data_dir`` None means ``SMARTCITY_OPENDATA_DIR``, else ``$SMARTCITY_HOME/opendata``;
    uploaded resource files are kept under its ``uploads/`` folder, one folder per resource,
    and the historical archive's snapshots under ``archive/``, one file per content hash.

    The archive keeps, per resource, at most ``archive_keep_versions`` versions (0: all) and
    none older than ``archive_keep_days`` days (0: forever), always the latest one;
    ``serve`` snapshots links, APIs and hub queries every ``archive_interval`` seconds
    (0: only ``smartcity opendata archive run``). Hub queries are read from ``site_url``.
    """

    data_dir: Path | None = None
    max_upload_bytes: int = 100 * 1024 * 1024
    site_title: str = "Hong Kong Smart City Open Data"
    archive_keep_versions: int = 0
    archive_keep_days: int = 0
    archive_interval: float = 0.0
    archive_max_bytes: int = 100 * 1024 * 1024
    site_url: str = "http://127.0.0.1:8000"
    # DataStore (opendata/datastore): datastore_search_sql is off unless switched on; each of
    # its statements stops after the timeout and answers at most the row cap.
    datastore_sql: bool = False
    datastore_sql_timeout_s: float = 5.0
    datastore_sql_row_cap: int = 10_000
    # datastore_search and dumps: a search (words over a large table) stops after this long.
    datastore_search_timeout_s: float = 10.0
    # Uploads up to this size load into the DataStore inside resource_create's request;
    # larger ones in a background thread (datastore_info shows the load's state).
    datastore_sync_load_bytes: int = 5 * 1024 * 1024

    @property
    def root(self) -> Path:
        return self.data_dir or smartcity_home() / "opendata"

    @property
    def upload_dir(self) -> Path:
        return self.root / "uploads"

    @property
    def archive_dir(self) -> Path:
        return self.root / "archive"

    @classmethod
    def from_env(cls) -> OpenDataSettings:
        d = cls()
        raw_dir = os.environ.get("SMARTCITY_OPENDATA_DIR")
        return cls(
            data_dir=Path(raw_dir).expanduser() if raw_dir else None,
            max_upload_bytes=_env_int("SMARTCITY_OPENDATA_MAX_UPLOAD_MB", 0) * 1024 * 1024
            or d.max_upload_bytes,
            site_title=os.environ.get("SMARTCITY_OPENDATA_SITE_TITLE", d.site_title),
            archive_keep_versions=_env_int(
                "SMARTCITY_OPENDATA_ARCHIVE_KEEP_VERSIONS", d.archive_keep_versions
            ),
            archive_keep_days=_env_int("SMARTCITY_OPENDATA_ARCHIVE_KEEP_DAYS", d.archive_keep_days),
            archive_interval=_env_float("SMARTCITY_OPENDATA_ARCHIVE_INTERVAL", d.archive_interval),
            archive_max_bytes=_env_int("SMARTCITY_OPENDATA_ARCHIVE_MAX_MB", 0) * 1024 * 1024
            or d.archive_max_bytes,
            site_url=os.environ.get("SMARTCITY_OPENDATA_SITE_URL", d.site_url).rstrip("/"),
            datastore_sql=os.environ.get("SMARTCITY_OPENDATA_DATASTORE_SQL", "").lower()
            in ("1", "true", "yes", "on"),
            datastore_sql_timeout_s=float(
                os.environ.get("SMARTCITY_OPENDATA_DATASTORE_SQL_TIMEOUT_S")
                or d.datastore_sql_timeout_s
            ),
            datastore_sql_row_cap=_env_int("SMARTCITY_OPENDATA_DATASTORE_SQL_ROWS", 0)
            or d.datastore_sql_row_cap,
        )


@dataclass
class ClusterSettings:
    """Several ``serve`` nodes on one PostgreSQL database (storage/leases.py, docs/deploy.md).

    Each periodic job (the silent-device sweep, ledger pruning, archive runs, periodic
    notifications) runs on the node holding its lease; the lease lasts ``job_lease`` seconds
    and is renewed every third of that, so a dead node's jobs are taken over within
    ``job_lease * 4 / 3`` seconds. Shorter: faster takeover, more renewals (one small UPDATE
    per node every ``job_lease / 3`` s).
    """

    job_lease: float = 15.0

    def __post_init__(self) -> None:
        if self.job_lease <= 0:
            raise ValueError(f"SMARTCITY_JOB_LEASE must be positive (got {self.job_lease})")

    @classmethod
    def from_env(cls) -> ClusterSettings:
        return cls(job_lease=_env_float("SMARTCITY_JOB_LEASE", cls.job_lease))


@dataclass
class ReplicaSettings:
    """PostgreSQL streaming replicas for the reads that tolerate a short lag (storage/replicas.py,
    docs/deploy.md "Read replicas"). ``urls``: ``serve --read-database`` or
    ``SMARTCITY_READ_DATABASE_URLS`` (comma-separated); none means every read on the primary.
    A replica more than ``max_lag`` seconds behind (``SMARTCITY_READ_MAX_LAG``) is skipped, as
    measured by a probe every ``probe_interval`` seconds (``SMARTCITY_READ_PROBE_INTERVAL``).
    """

    urls: tuple[str, ...] = ()
    max_lag: float = 5.0
    probe_interval: float = 0.5

    def __post_init__(self) -> None:
        if self.max_lag <= 0 or self.probe_interval <= 0:
            raise ValueError(
                "SMARTCITY_READ_MAX_LAG and SMARTCITY_READ_PROBE_INTERVAL must be positive "
                f"(got {self.max_lag} and {self.probe_interval})"
            )

    @classmethod
    def from_env(cls) -> ReplicaSettings:
        raw = os.environ.get("SMARTCITY_READ_DATABASE_URLS", "")
        return cls(
            urls=tuple(u.strip() for u in raw.split(",") if u.strip()),
            max_lag=_env_float("SMARTCITY_READ_MAX_LAG", cls.max_lag),
            probe_interval=_env_float("SMARTCITY_READ_PROBE_INTERVAL", cls.probe_interval),
        )


@dataclass
class Settings:
    database_url: str
    auth_required: bool = True
    # Tenants whose reads need a key; "*" makes every tenant private.
    private_read_tenants: frozenset[str] = frozenset()
    # SSRF protection: refuse notification endpoints / @context URLs on loopback and private
    # networks. Off by default because a city's receivers usually live on its own network.
    forbid_private_targets: bool = False
    limits: Limits = field(default_factory=Limits)
    feedback: FeedbackSettings = field(default_factory=FeedbackSettings)
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    sessions: SessionSettings = field(default_factory=SessionSettings)
    opendata: OpenDataSettings = field(default_factory=OpenDataSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    replicas: ReplicaSettings = field(default_factory=ReplicaSettings)

    @classmethod
    def from_env(cls, database_url: str | None = None, *, auth_required: bool = True) -> Settings:
        private = os.environ.get("SMARTCITY_PRIVATE_READ_TENANTS", "")
        return cls(
            database_url=resolve_database_url(database_url),
            auth_required=auth_required,
            private_read_tenants=frozenset(t.strip() for t in private.split(",") if t.strip()),
            forbid_private_targets=_env_bool("SMARTCITY_FORBID_PRIVATE_TARGETS", False),
            limits=Limits(
                max_temporal_instances=_env_int(
                    "SMARTCITY_TEMPORAL_INSTANCE_LIMIT", Limits.max_temporal_instances
                ),
                query_timeout=_env_float("SMARTCITY_QUERY_TIMEOUT", Limits.query_timeout),
                render_cache_bytes=int(
                    _env_float("SMARTCITY_RENDER_CACHE_MB", Limits.render_cache_bytes / 2**20)
                    * 2**20
                ),
            ),
            feedback=FeedbackSettings.from_env(),
            notifications=NotificationSettings.from_env(),
            sessions=SessionSettings.from_env(),
            opendata=OpenDataSettings.from_env(),
            cluster=ClusterSettings.from_env(),
            replicas=ReplicaSettings.from_env(),
        )

"""The Litestar application: routes, database pool, authentication and error handling."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide

from api.alerts.watcher import watcher_of
from api.core.rate_limit import RateLimiter
from api.export.exporter import exporter_of
from api.settings import Settings
from api.storage.availability import Database
from api.storage.folder import Folder
from api.storage.key_cache import KeyCache
from api.storage.writer import Writer
from api.web.auth import authentication
from api.web.conventions import http_conventions
from api.web.logs import request_log
from api.web.metrics import Metrics, count_requests
from api.web.openapi import add_event_schemas, add_transport_refusals, openapi_config
from api.web.problems import EXCEPTION_HANDLERS
from api.web.routes.health import healthz, readyz
from api.web.routes.ingest import MAX_BODY_BYTES, post_events
from api.web.routes.keys import Keys
from api.web.routes.otlp import post_traces
from api.web.routes.page import page_router
from api.web.routes.thresholds import Thresholds
from api.web.routes.usage import all_orgs_usage, org_usage


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def database(app: Litestar) -> AsyncIterator[None]:
        database = Database(
            settings.database_url, settings.db_pool_size, settings.db_checkout_timeout
        )
        await database.open()
        app.state.database = database
        app.state.key_cache = KeyCache(database, settings.database_url, settings.key_cache_seconds)
        app.state.key_cache.start()
        app.state.folder = Folder(
            database, folding=settings.fold_in_server, interval=settings.fold_interval
        )
        app.state.folder.start()
        app.state.pending_limit = settings.pending_limit
        app.state.writer = Writer(database)
        app.state.rate_limiter = RateLimiter(settings.rate_limit, settings.rate_burst)
        app.state.auth_failure_limiter = RateLimiter(
            settings.auth_failure_rate, settings.auth_failure_burst
        )
        app.state.trusted_proxies = settings.trusted_proxies
        app.state.accept_days = settings.accept_days
        app.state.raw_retention_days = settings.raw_retention_days
        app.state.webhook_allow_hosts = settings.webhook_allow_hosts
        app.state.public_url = settings.public_url
        watcher = watcher_of(database, settings)
        if settings.watch_in_server:
            watcher.start()
        app.state.exporter = exporter_of(database, settings)
        if app.state.exporter is not None:
            app.state.exporter.start()
        try:
            yield
        finally:
            if app.state.exporter is not None:
                await app.state.exporter.stop()
            await watcher.stop()
            await app.state.folder.stop()
            await app.state.key_cache.stop()
            await database.close()

    app = Litestar(
        route_handlers=[
            healthz,
            readyz,
            post_events,
            post_traces,
            org_usage,
            all_orgs_usage,
            Thresholds,
            Keys,
            page_router(settings.page_dir),
            Metrics,
        ],
        lifespan=[database],
        dependencies={
            "database": Provide(_database, sync_to_thread=False),
            "writer": Provide(_writer, sync_to_thread=False),
            "accept_days": Provide(_accept_days, sync_to_thread=False),
        },
        middleware=[authentication],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=MAX_BODY_BYTES,
        cors_config=_cors(settings.cors_origins),
        openapi_config=openapi_config(settings.page_dir),
    )
    # Around everything, errors already turned into responses and unknown paths included:
    # route middleware sees neither.
    app.asgi_handler = request_log(count_requests(http_conventions(app.asgi_handler)))
    add_event_schemas(app)
    add_transport_refusals(app)
    return app


def _database(state: State) -> Database:
    return state.database


def _writer(state: State) -> Writer:
    return state.writer


def _accept_days(state: State) -> int:
    return state.accept_days


def _cors(origins: tuple[str, ...]) -> CORSConfig | None:
    """Closed unless origins are configured: then those pages may read and send with a key."""
    if not origins:
        return None
    return CORSConfig(
        allow_origins=list(origins),
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
        # The page names a downloaded CSV file as the service does.
        expose_headers=["Content-Disposition"],
        max_age=600,
    )

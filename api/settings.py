"""Configuration, read from the environment once at start-up."""

import os
from pathlib import Path

import msgspec

# Where `make` builds the page (frontend/dist).
DEFAULT_PAGE_DIR = Path(__file__).resolve().parent.parent / "frontend" / "dist"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str
    db_pool_size: int = 10
    page_dir: Path = DEFAULT_PAGE_DIR
    # Origins (scheme://host[:port]) whose pages may call the API: a page hosted elsewhere.
    cors_origins: tuple[str, ...] = ()
    # Per API key: requests per second sustained, and at once; a rate of 0 turns it off.
    rate_limit: float = 50.0
    rate_burst: int = 100

    @classmethod
    def from_env(cls) -> "Settings":
        database_url = os.environ.get("DATABASE_URL")
        if not database_url:
            raise SystemExit(
                "DATABASE_URL is not set: give a postgresql:// URL, or use `make run`, "
                "which starts an embedded PostgreSQL under .data/"
            )
        return cls(
            database_url=database_url,
            db_pool_size=int(os.environ.get("USAGE_DB_POOL_SIZE", "10")),
            page_dir=Path(os.environ.get("USAGE_PAGE_DIR", DEFAULT_PAGE_DIR)),
            cors_origins=tuple(
                origin.strip()
                for origin in os.environ.get("USAGE_CORS_ORIGINS", "").split(",")
                if origin.strip()
            ),
            rate_limit=float(os.environ.get("USAGE_RATE_LIMIT", "50")),
            rate_burst=int(os.environ.get("USAGE_RATE_BURST", "100")),
        )

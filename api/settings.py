"""Configuration, read from the environment once at start-up."""

import os

import msgspec


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str
    db_pool_size: int = 10

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
        )

"""The live keys the server has looked up, kept in memory so that a request costs no key
lookup, and forgotten when a key is revoked; and the hashes of every live key, so that a
request with a real key is told from a guess before any lookup.

A revocation (api.storage.keys.revoke_key) notifies the channel ``REVOKED_CHANNEL`` in its
transaction; the cache listens on a connection of its own and forgets the key when told.
While it cannot listen (starting, or the database unreachable) it keeps nothing, so no
revocation goes unheard; and a key is looked up again at the latest ``ttl`` seconds after
it was cached, which bounds a revocation made without the notification (an UPDATE by hand).

An expired key is found all the same, and refused by its caller with the reason
(api.web.auth): its expiry is compared with the clock on every request, cached or not.
When a key is used is written in the background, at most once a minute per key and process
(``last_used_at``, to the minute), so a request costs no write of its own.

The live hashes are read whole when the listener connects, and a key created since is
added when its creation is heard (``CREATED_CHANNEL``) or it is first found. They decide
only whether an address's limit on unknown keys applies, never whether a key is live: a
stale one costs one lookup, which finds the key revoked and forgets its hash.
"""

import asyncio
import logging
import time
from datetime import datetime

import psycopg
from prometheus_client import Counter

from api.storage.availability import PROBE_INTERVAL, Database, DatabaseUnavailable
from api.storage.db import connect_kwargs
from api.storage.keys import (
    CREATED_CHANNEL,
    REVOKED_CHANNEL,
    ApiKey,
    find_key,
    hash_key,
    live_key_hashes,
    record_uses,
)

_LISTEN = (f"LISTEN {REVOKED_CHANNEL}", f"LISTEN {CREATED_CHANNEL}")
_log = logging.getLogger("api.keys")
USES_INTERVAL = 1.0  # seconds between the writes of the keys' last uses
LAST_USE_WRITES = Counter(
    "usage_key_last_use_writes_total", "API keys' last_used_at moved by this process"
)


class KeyCache:
    def __init__(self, database: Database, url: str, ttl: float) -> None:
        self._database = database
        self._url = url
        self._ttl = ttl
        self._keys: dict[bytes, tuple[ApiKey, float]] = {}  # hash → key, when looked up
        self._live_hashes: set[bytes] = set()
        # Changes whenever a cached key may have become stale (a revocation, a lost
        # listener): a lookup begun before the change caches nothing.
        self._generation = 0
        self._listening = False
        self._tasks: list[asyncio.Task[None]] = []
        self._used: dict[str, datetime] = {}  # key id → the minute last noted
        self._unwritten: dict[str, datetime] = {}  # key id → a minute not yet written

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._listen()), loop.create_task(self._write_uses())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._write_unwritten()  # the last minute's uses are not lost on shutdown

    @property
    def listening(self) -> bool:
        return self._listening

    def is_live(self, key: str) -> bool:
        """Whether ``key`` is, as far as this server heard, a live key's secret: a request
        with it is no guess, whatever else its address sent."""
        return hash_key(key) in self._live_hashes

    async def find(self, key: str) -> ApiKey | None:
        """The live key with this secret, if any: from memory, or looked up."""
        key_hash = hash_key(key)
        now = time.monotonic()
        cached = self._keys.get(key_hash)
        if cached is not None and now - cached[1] < self._ttl:
            return cached[0]
        generation = self._generation
        async with self._database.connection() as conn:
            found = await find_key(conn, key)
        if found is None:
            self._keys.pop(key_hash, None)
            self._live_hashes.discard(key_hash)
            return None
        self._live_hashes.add(key_hash)
        if self._listening and generation == self._generation:
            self._keys[key_hash] = (found, now)
        return found

    def note_use(self, api_key: ApiKey, now: datetime) -> None:
        """``api_key`` used at ``now``: its minute written soon, once."""
        minute = now.replace(second=0, microsecond=0)
        if self._used.get(api_key.key_id) != minute:
            self._used[api_key.key_id] = minute
            self._unwritten[api_key.key_id] = minute

    async def _write_uses(self) -> None:
        while True:
            await asyncio.sleep(USES_INTERVAL)
            await self._write_unwritten()

    async def _write_unwritten(self) -> None:
        if not self._unwritten:
            return
        uses, self._unwritten = self._unwritten, {}
        try:
            async with self._database.connection() as conn:
                LAST_USE_WRITES.inc(await record_uses(conn, uses))
        except (psycopg.Error, DatabaseUnavailable) as error:  # the next write takes them
            for key_id, minute in uses.items():
                self._unwritten.setdefault(key_id, minute)
            _log.warning("could not write the keys' last uses (%s); trying again", error)

    def _forget(self, key_id: str | None = None) -> None:
        """The key ``key_id`` (every key when None), and every lookup in flight."""
        self._generation += 1
        if key_id is None:
            self._keys.clear()
        else:
            for key_hash in [h for h, (k, _) in self._keys.items() if k.key_id == key_id]:
                del self._keys[key_hash]

    async def _listen(self) -> None:
        """Hears revocations for as long as the server runs, reconnecting after a failure."""
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._url, **connect_kwargs()
                ) as conn:
                    for listen in _LISTEN:
                        await conn.execute(listen)
                    self._live_hashes = await live_key_hashes(conn)
                    self._listening = True
                    async for notice in conn.notifies():
                        if notice.channel == CREATED_CHANNEL:
                            self._live_hashes.add(bytes.fromhex(notice.payload))
                        else:
                            self._forget(notice.payload)
            except psycopg.Error as error:
                if self._listening:
                    _log.warning("not hearing key revocations (%s); reconnecting", error)
            finally:
                self._listening = False
                self._forget()
            await asyncio.sleep(PROBE_INTERVAL)

"""asyncpg pool, SQL migrations (safe when replicas start together) and the unit of work on asyncpg."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import asyncpg

from libs.common.events import EventEnvelope
from libs.common.inbox import PgInbox
from libs.common.outages import is_outage
from libs.common.outbox import add_event, add_events
from libs.common.pii import Keyring
from libs.common.timers import PgTimers
from libs.common.uow import Clock, SystemClock

log = logging.getLogger(__name__)

COMMON_MIGRATIONS = Path(__file__).with_name("migrations")
# Any constant works; it only has to be the same for every replica of every service.
MIGRATION_LOCK_KEY = 0x6A7A_6D69


async def create_pool(dsn: str, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections go back without asyncpg's session reset.

    The services keep no session state on pooled connections (no LISTEN, no session advisory
    locks, no SET), so the four-statement ``Connection.reset`` per release is pure cost;
    asyncpg still rolls back an open transaction and drops listeners locally.
    """
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, command_timeout=30, timeout=10, reset=_keep_session
    )
    assert pool is not None
    return pool


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Nothing to undo: see ``create_pool``."""


def _migration_files(service_dir: Path | None) -> list[tuple[str, Path]]:
    files = [(f"common/{p.name}", p) for p in sorted(COMMON_MIGRATIONS.glob("*.sql"))]
    files += [(p.name, p) for p in sorted(service_dir.glob("*.sql"))] if service_dir else []
    return files


async def migrate(dsn: str, service_dir: Path | None) -> list[str]:
    """Apply the common then the service's migrations not yet applied, each in its own transaction
    (only the common ones without a ``service_dir``).

    A session advisory lock serialises replicas that start at once; a changed file that was
    already applied is an error, not silently skipped.
    """
    conn: asyncpg.Connection = await asyncpg.connect(dsn)
    applied_now: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"]: r["checksum"] for r in await conn.fetch("SELECT * FROM schema_migrations")}
        for version, path in _migration_files(service_dir):
            sql = path.read_text()
            checksum = hashlib.sha256(sql.encode()).hexdigest()
            if version in done:
                if done[version] != checksum:
                    raise RuntimeError(f"migration {version} changed after it was applied")
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)", version, checksum
                )
            applied_now.append(version)
            log.info("migration applied", extra={"fields": {"version": version}})
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
        await conn.close()
    return applied_now


class PgUnitOfWork:
    """``libs.common.uow.UnitOfWork`` on one pooled connection and one transaction.

    A service's unit of work subclasses it and builds its repositories on ``conn`` in ``_bind``,
    so that its state changes, its outbox rows and its inbox rows commit together.
    """

    def __init__(
        self, pool: asyncpg.Pool, clock: Clock | None = None, acquire_timeout_s: float = 5.0
    ) -> None:
        self._pool = pool
        self._acquire_timeout_s = acquire_timeout_s
        self.clock: Clock = clock or SystemClock()
        self._conn: Any = None
        self._tx: Any = None
        self._transactional = True

    @property
    def conn(self) -> asyncpg.Connection:
        if self._conn is None:
            raise RuntimeError("unit of work used outside 'async with'")
        conn: asyncpg.Connection = self._conn
        return conn

    @property
    def inbox(self) -> PgInbox:
        return PgInbox(self.conn)

    @property
    def timers(self) -> PgTimers:
        return PgTimers(self.conn, self.clock)

    def _bind(self, conn: asyncpg.Connection) -> None:
        """Build the service's repositories on ``conn``; the base has none."""

    async def add_event(self, topic: str, event: EventEnvelope) -> None:
        await add_event(self.conn, topic, event)

    async def add_events(self, topic: str, events: Sequence[EventEnvelope]) -> None:
        await add_events(self.conn, topic, events)

    def reading(self) -> Self:
        """No BEGIN and no ROLLBACK around the statements: under READ COMMITTED each statement
        reads its own snapshot whether in a transaction or not, so for reads the transaction is
        two round trips for nothing. Such a unit of work cannot commit."""
        self._transactional = False
        return self

    async def __aenter__(self) -> Self:
        async with asyncio.timeout(self._acquire_timeout_s):  # unlike acquire(timeout=), no extra task
            self._conn = await self._pool.acquire()
        if self._transactional:
            try:
                self._tx = self._conn.transaction()
                await self._tx.start()
            except BaseException as exc:
                await self._release(exc)
                raise
        self._bind(self._conn)
        return self

    async def commit(self) -> None:
        if not self._transactional:
            raise RuntimeError("a unit of work that only reads cannot commit")
        await self._tx.commit()
        self._tx = None

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        tx, self._tx = self._tx, None
        try:
            if tx is not None:
                await tx.rollback()
        except Exception:
            # A commit interrupted by a cancellation leaves the transaction "in error state";
            # the error in flight (the cancellation) is the one to keep, and the pool's release
            # rolls the connection back or discards it.
            if exc is None:
                raise
        finally:
            await self._release(exc)

    async def _release(self, error: BaseException | None) -> None:
        self._tx = None
        conn, self._conn = self._conn, None
        if error is not None and is_outage(error):
            # It saw the database go away: never hand it out again. asyncpg has already taken
            # back a connection the server closed, and then refuses to terminate it.
            with contextlib.suppress(asyncpg.InterfaceError):
                conn.terminate()
        await self._pool.release(conn)


async def database_answers(pool: asyncpg.Pool, timeout_s: float = 2.0) -> bool:
    """Whether the database takes a new query now (used to tell an outage from a bad event)."""
    try:
        await pool.fetchval("SELECT 1", timeout=timeout_s)
    except Exception:  # noqa: BLE001 - any failure means "not now"
        return False
    return True


class PgSealingUnitOfWork(PgUnitOfWork):
    """A unit of work whose repositories seal and open personal data with ``keyring``."""

    def __init__(
        self, pool: asyncpg.Pool, keyring: Keyring, clock: Clock | None = None, acquire_timeout_s: float = 5.0
    ) -> None:
        super().__init__(pool, clock, acquire_timeout_s)
        self._keyring = keyring

"""asyncpg pool, SQL migrations (safe when replicas start together) and a unit of work."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from types import TracebackType
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

COMMON_MIGRATIONS = Path(__file__).with_name("migrations")
# Any constant works; it only has to be the same for every replica of every service.
MIGRATION_LOCK_KEY = 0x6A7A_6D69


async def create_pool(dsn: str, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, command_timeout=30)
    assert pool is not None
    return pool


def _migration_files(service_dir: Path) -> list[tuple[str, Path]]:
    files = [(f"common/{p.name}", p) for p in sorted(COMMON_MIGRATIONS.glob("*.sql"))]
    files += [(p.name, p) for p in sorted(service_dir.glob("*.sql"))]
    return files


async def migrate(dsn: str, service_dir: Path) -> list[str]:
    """Apply the common then the service's migrations not yet applied, each in its own transaction.

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


class UnitOfWork:
    """One transaction on one pooled connection; nothing is kept unless ``commit`` is called.

    Repositories and the outbox write through ``conn`` so a state change and its events
    commit together.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._conn: Any = None
        self._tx: Any = None

    @property
    def conn(self) -> asyncpg.Connection:
        if self._conn is None:
            raise RuntimeError("unit of work used outside 'async with'")
        conn: asyncpg.Connection = self._conn
        return conn

    async def __aenter__(self) -> UnitOfWork:
        self._conn = await self._pool.acquire()
        self._tx = self._conn.transaction()
        await self._tx.start()
        return self

    async def commit(self) -> None:
        await self._tx.commit()
        self._tx = None

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._tx is not None:
                await self._tx.rollback()
        finally:
            await self._pool.release(self._conn)
            self._conn = None

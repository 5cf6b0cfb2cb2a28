"""Personal data sealed into a real PostgreSQL ``bytea`` column: unreadable at rest, found by its hash,
openable with the local stack's kept keys after the services restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from deploy.local.services import LocalServices
from deploy.local.stack import Endpoints
from libs.common.pii import Keyring, PersonalDataError
from libs.common.settings import ServiceSettings

ID_NUMBER = "11010519491231002X"
PHONE = "13800138000"
NAME = "欧阳娜娜"
ID_FIELD, PHONE_FIELD, NAME_FIELD = (f"test.person.{field}" for field in ("id_number", "phone", "name"))


def keyring_of_stack(home: Path, monkeypatch: pytest.MonkeyPatch) -> Keyring:
    """The keyring a service of the local stack at ``home`` builds from its environment."""
    home.mkdir(exist_ok=True)
    for name, value in LocalServices(home).pii_keys().items():
        monkeypatch.setenv(name, value)
    return Keyring.from_settings(ServiceSettings())


@pytest.fixture
async def conn(endpoints: Endpoints, scratch_database: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(endpoints.dsn(scratch_database))
    await conn.execute(
        "CREATE TABLE person (id int PRIMARY KEY, id_number bytea NOT NULL, "
        "id_number_hash bytea NOT NULL UNIQUE, phone bytea NOT NULL, name bytea NOT NULL)"
    )
    yield conn
    await conn.close()


async def store(conn: asyncpg.Connection, keyring: Keyring) -> None:
    await conn.execute(
        "INSERT INTO person VALUES (1, $1, $2, $3, $4)",
        keyring.seal(ID_NUMBER, ID_FIELD),
        keyring.lookup_hash(ID_NUMBER, ID_FIELD),
        keyring.seal(PHONE, PHONE_FIELD),
        keyring.seal(NAME, NAME_FIELD),
    )


async def test_sealed_values_are_unreadable_at_rest_and_found_by_hash(
    conn: asyncpg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store(conn, keyring_of_stack(tmp_path, monkeypatch))

    row = await conn.fetchrow("SELECT id_number, id_number_hash, phone, name FROM person")
    as_text = await conn.fetchval("SELECT p::text FROM person p")
    for plain in (ID_NUMBER, PHONE, NAME):
        assert all(plain.encode() not in value for value in row)
        assert plain not in as_text
        assert plain.encode().hex() not in as_text
    assert row["phone"].hex() in as_text  # the text form does carry the sealed bytes

    restarted = keyring_of_stack(tmp_path, monkeypatch)  # the same stack's kept keys, a new process
    found = await conn.fetchrow(
        "SELECT id_number, phone, name FROM person WHERE id_number_hash = $1",
        restarted.lookup_hash(" 11010519491231002x", ID_FIELD),
    )
    assert found is not None
    assert restarted.open(found["id_number"], ID_FIELD) == ID_NUMBER
    assert restarted.open(found["phone"], PHONE_FIELD) == PHONE
    assert restarted.open(found["name"], NAME_FIELD) == NAME


async def test_another_stacks_keys_neither_find_nor_open_the_row(
    conn: asyncpg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store(conn, keyring_of_stack(tmp_path / "one", monkeypatch))
    other = keyring_of_stack(tmp_path / "other", monkeypatch)

    found = await conn.fetchval(
        "SELECT count(*) FROM person WHERE id_number_hash = $1", other.lookup_hash(ID_NUMBER, ID_FIELD)
    )

    assert found == 0
    assert other.active_key_id == "dev-1"  # same key id, another key: authentication fails
    with pytest.raises(PersonalDataError, match="authentication failed"):
        other.open(await conn.fetchval("SELECT id_number FROM person"), ID_FIELD)


async def test_the_rotation_query_finds_the_values_sealed_with_a_key(
    conn: asyncpg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store(conn, keyring_of_stack(tmp_path, monkeypatch))
    sealed_with = (  # as in docs/personal-data.md, "Rotating keys"
        "SELECT count(*) FROM person WHERE get_byte(phone, 1) = length($1::text) "
        "AND substring(phone from 3 for length($1::text)) = $1::text::bytea"
    )

    assert await conn.fetchval(sealed_with, "dev-1") == 1
    assert await conn.fetchval(sealed_with, "dev-2") == 0
    assert await conn.fetchval(sealed_with, "dev-") == 0

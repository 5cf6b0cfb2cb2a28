"""The very last test of the integration suite (issue 14, Security 3; conftest.py orders it after
the regulator records' scan): everything the whole suite left is scanned for personal data in
plain text, and any hit fails:

(a) every service log file under the harness's home (``<home>/logs``: this run's only);
(b) every record of every Kafka topic but the broker's own (``__*``): the services' events, the
    regulator topics, the dead-letter topics, the regulator's table changelogs; key, value and
    headers;
(c) every row of every table of every service database (``jz_*``) still there (the scratch
    databases of test modules are dropped when their module ends): every text, json and bytea
    column (a bytea column as its bytes read as UTF-8, so that an event payload or a plain value
    shows; the ``*_sealed`` columns, libs/common/pii.py, hold AES-GCM ciphertext, which no
    pattern matches unless sealing failed).

Personal data is: a resident ID number (18 characters, a real birth date and a valid GB 11643
check character: services/workers/domain/identity.py decides), a mainland mobile number
(1[3-9] and nine digits, a whole token), a personal name or a street address the tests use
(collected from the tests' sources: ``full_name=`` and ``address=`` values, and the names the
CLI tests type). A finding is reported as where, what kind, and an excerpt with the personal
data masked.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from deploy.local.stack import Endpoints
from libs.common.errors import InvalidArgument
from libs.common.pii import mask_address, mask_id_number, mask_name, mask_phone
from services.workers.domain.identity import resident_id
from tests.integration.harness import ServiceHarness
from tests.integration.kafka_tools import read_topic

TESTS = Path(__file__).parents[1]
ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
# A whole token: no letter or digit either side (inside a UUID's hex, eleven digits are no phone),
# and not the decimals of a number (0.13812345678).
MOBILE = re.compile(r"(?<![0-9A-Za-z])(?<!\d\.)1[3-9]\d{9}(?![0-9A-Za-z])")
# The names the tests give people beside those they give as full_name= (CLI arguments, CSV rows,
# fixtures of other modules), and the street part of the addresses they give.
NAMES = {"张三", "李四", "王五", "王芳", "李奶奶", "王奶奶", "赵先生", "欧阳娜娜", "王小红"}
FULL_NAME = re.compile(r"""full_name\s*=\s*["']([^"'*<>]+)["']""")
ADDRESS = re.compile(r"""(?:address\s*=\s*|"--address",\s*)["']([^"']+)["']""")


def names_in_tests() -> set[str]:
    found = set(NAMES)
    for source in TESTS.rglob("*.py"):
        found |= {n.strip() for n in FULL_NAME.findall(source.read_text(encoding="utf-8")) if n.strip()}
    return found


def addresses_in_tests() -> set[str]:
    """The street and number of each address the tests give (after the district: 望京西路8号)."""
    found = set()
    for source in TESTS.rglob("*.py"):
        for address in ADDRESS.findall(source.read_text(encoding="utf-8")):
            street = address.rsplit("区", 1)[-1]
            if re.search(r"\d", street) and len(street) >= 4:
                found.add(street)
    return found


@dataclass(frozen=True)
class Finding:
    where: str
    kind: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.where}: {self.kind}: …{self.excerpt}…"


class Scanner:
    """What looks like personal data in a text, as findings with masked excerpts."""

    def __init__(self, names: set[str], addresses: set[str]) -> None:
        self.terms: list[tuple[str, re.Pattern[str], Callable[[str], str]]] = [
            ("resident ID number", ID_NUMBER, mask_id_number),
            ("mobile number", MOBILE, mask_phone),
            ("personal name", _alternatives(names), mask_name),
            ("street address", _alternatives(addresses), lambda s: mask_address(s, shown=2)),
        ]

    def hits(self, text: str) -> Iterator[tuple[str, int, int]]:
        for kind, pattern, _ in self.terms:
            for m in pattern.finditer(text):
                if kind != "resident ID number" or _is_resident_id(m.group()):
                    yield kind, m.start(), m.end()

    def masked(self, text: str) -> str:
        for _, pattern, mask in self.terms:
            text = pattern.sub(_masking(mask), text)
        return "".join(c if c.isprintable() else "·" for c in text)

    def scan(self, where: str, text: str) -> list[Finding]:
        return [
            Finding(where, kind, self.masked(text[max(0, start - 40) : end + 40]))
            for kind, start, end in self.hits(text)
        ]


def _masking(mask: Callable[[str], str]) -> Callable[[re.Match[str]], str]:
    return lambda match: mask(match.group())


def _alternatives(words: set[str]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)) or r"(?!)")


def _is_resident_id(text: str) -> bool:
    try:
        resident_id(text)
    except InvalidArgument:
        return False
    return True


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


# -- (a) logs ------------------------------------------------------------------------------------


def scan_logs(scanner: Scanner, logs: Path) -> tuple[int, list[Finding]]:
    files, findings = 0, []
    for log in sorted(p for p in logs.rglob("*") if p.is_file()):
        files += 1
        for number, line in enumerate(log.read_bytes().decode("utf-8", "replace").splitlines(), 1):
            findings += scanner.scan(f"log {log.name}:{number}", line)
    return files, findings


# -- (b) Kafka -----------------------------------------------------------------------------------


async def topics(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return sorted(t for t in await admin.list_topics() if not t.startswith("__"))
    finally:
        await admin.close()


async def scan_kafka(scanner: Scanner, bootstrap: str) -> tuple[int, int, list[Finding]]:
    names = await topics(bootstrap)
    records, findings = 0, []
    for topic in names:
        for record in await read_topic(bootstrap, topic):
            records += 1
            where = f"kafka {topic}@{record.partition}:{record.offset}"
            findings += scanner.scan(f"{where} key", _text(record.key or b""))
            findings += scanner.scan(f"{where} value", _text(record.value))
            for header, value in record.headers.items():
                findings += scanner.scan(f"{where} header {header}", _text(value))
    return len(names), records, findings


# -- (c) databases -------------------------------------------------------------------------------

TEXT_COLUMNS = """
SELECT table_name, column_name, data_type FROM information_schema.columns
WHERE table_schema = 'public'
  AND (data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'bytea')
       OR (data_type = 'ARRAY' AND udt_name IN ('_text', '_varchar', '_jsonb', '_json')))
ORDER BY table_name, ordinal_position
"""


ROW = "scanned row's ctid"


async def service_databases(endpoints: Endpoints) -> list[str]:
    conn = await asyncpg.connect(endpoints.dsn("postgres"))
    try:
        rows = await conn.fetch(
            r"SELECT datname FROM pg_database WHERE datname LIKE 'jz\_%' ORDER BY datname"
        )
    finally:
        await conn.close()
    return [r["datname"] for r in rows]


async def scan_database(scanner: Scanner, dsn: str, database: str) -> tuple[int, int, list[Finding]]:
    conn = await asyncpg.connect(dsn)
    try:
        columns: dict[str, list[tuple[str, str]]] = {}
        for r in await conn.fetch(TEXT_COLUMNS):
            columns.setdefault(r["table_name"], []).append((r["column_name"], r["data_type"]))
        rows, findings = 0, []
        for table, cols in columns.items():
            selected = ", ".join(
                f'"{name}"'
                if kind in {"bytea", "text", "character varying", "character"}
                else f'"{name}"::text'
                for name, kind in cols
            )
            query = f'SELECT ctid::text AS "{ROW}", {selected} FROM public."{table}"'
            for row in await conn.fetch(query):
                rows += 1
                for name, _ in cols:
                    if row[name] is not None:
                        where = f"db {database}.{table}.{name} (row {row[ROW]})"
                        findings += scanner.scan(where, _text(row[name]))
        return len(columns), rows, findings
    finally:
        await conn.close()


# -- the scan ------------------------------------------------------------------------------------


def test_the_scanner_finds_each_kind_and_masks_it() -> None:
    scanner = Scanner(names_in_tests(), addresses_in_tests())
    text = json.dumps(
        {"msg": "x", "id": "11010519491231002X", "phone": "13812345678", "name": "张三", "at": "望京西路8号"},
        ensure_ascii=False,
    )
    found = scanner.scan("t", text)
    assert sorted(f.kind for f in found) == [
        "mobile number",
        "personal name",
        "resident ID number",
        "street address",
    ]
    assert not any(s in f.excerpt for f in found for s in ("19491231", "1234", "张三", "望京西路8号"))
    # Not personal data: a wrong check character, digits inside a UUID, decimals, a masked name.
    quiet = "11010519491231002Y 7b1c13812345678e 0.13812345678 138****5678 王* 110105"
    assert scanner.scan("t", quiet) == []


@pytest.mark.timeout(600)
async def test_nothing_the_whole_suite_left_holds_personal_data_in_plain(
    endpoints: Endpoints, harness: ServiceHarness
) -> None:
    scanner = Scanner(names_in_tests(), addresses_in_tests())
    log_files, findings = scan_logs(scanner, harness.home / "logs")
    topic_count, records, in_kafka = await scan_kafka(scanner, endpoints.kafka_bootstrap)
    findings += in_kafka
    databases, tables, rows = await service_databases(endpoints), 0, 0
    for database in databases:
        t, r, in_db = await scan_database(scanner, endpoints.dsn(database), database)
        tables, rows, findings = tables + t, rows + r, findings + in_db

    scanned = (
        f"{log_files} log files, {topic_count} topics ({records} records), "
        f"{len(databases)} databases ({tables} tables, {rows} rows)"
    )
    print(f"scanned {scanned}")  # shown with -s
    # Logs: those of this session's processes (the harness clears the directory when it starts).
    assert log_files or not harness.running(), scanned
    assert records, scanned
    assert rows, scanned
    by_place = Counter((f.where.split(":")[0].split(" (row")[0].split("@")[0], f.kind) for f in findings)
    assert not findings, (
        f"personal data in plain text ({len(findings)} findings; scanned {scanned}):\n"
        + "\n".join(f"  {n} × {kind} in {where}" for (where, kind), n in by_place.most_common())
        + "\nfirst findings:\n"
        + "\n".join(f"  {f}" for f in findings[:40])
    )

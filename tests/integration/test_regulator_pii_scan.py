"""The last test of the integration suite (ordered so by conftest.py): a regulator projects
everything the whole suite left in the source topics, and every record of every regulator
topic is scanned for personal data. Any hit fails."""

from __future__ import annotations

import base64
import json
import re
import secrets
import uuid

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from deploy.local.stack import Endpoints
from libs.common.kafka import events_topic
from services.regulator.topics import INDICATORS_TOPIC, REGULATOR_TOPICS, SOURCE_SERVICES
from services.workers.domain.identity import id_check_character
from tests.integration.harness import ServiceHarness, eventually
from tests.integration.kafka_tools import Record, end_offsets, read_topic

ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{17})([\dXx])(?![0-9A-Za-z])")
# Bounded by what is not a letter or digit: inside a UUID's hex, eleven digits are no phone.
MOBILE = re.compile(r"(?<![0-9A-Za-z])1[3-9]\d{9}(?![0-9A-Za-z])")
# Consumer references as the suite gives them (consumer-42, 张三 …) and fields that hold names.
CONSUMER_REF = re.compile(r"consumer-\d+|张三")
PERSONAL_FIELDS = re.compile(
    r'"(consumerRef|name|displayName|fullName|realName|idNumber|mobile|phone|address|description)":'
)


async def _caught_up(bootstrap: str, group: str) -> bool:
    """The group's committed offsets are at the end of every source topic: consumer lag 0."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    for service in SOURCE_SERVICES:
        for tp, end in (await end_offsets(bootstrap, events_topic(service))).items():
            if end and (tp not in committed or committed[tp].offset < end):
                return False
    return True


async def _worker_ids(endpoints: Endpoints, databases: list[str]) -> set[str]:
    found: set[str] = set()
    for database in databases:
        conn = await asyncpg.connect(endpoints.dsn(database))
        try:
            if await conn.fetchval("SELECT to_regclass('workers')") is not None:
                found |= {str(r["worker_id"]) for r in await conn.fetch("SELECT worker_id FROM workers")}
        finally:
            await conn.close()
    return found


def _hits(record: Record, worker_ids: set[str]) -> list[str]:
    text = " ".join(
        [(record.key or b"").decode(), record.value.decode(), *(v.decode() for v in record.headers.values())]
    )
    hits = [
        m.group() for m in ID_NUMBER.finditer(text) if id_check_character(m.group(1)) == m.group(2).upper()
    ]
    hits += MOBILE.findall(text) + CONSUMER_REF.findall(text) + PERSONAL_FIELDS.findall(text)
    return hits + [w for w in worker_ids if w in text]


@pytest.mark.timeout(900)  # its regulator projects everything the whole suite produced first
async def test_no_regulator_record_of_the_whole_suite_holds_personal_data(
    endpoints: Endpoints, harness: ServiceHarness, workers_database: str, databases: None
) -> None:
    group = f"test-pii-scan-{uuid.uuid4().hex[:8]}"
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    await harness.start(
        "regulator", supervised=True, consumer_group_prefix=group, regulator_pseudonym_key=key
    )

    async def caught_up() -> bool:
        return await _caught_up(endpoints.kafka_bootstrap, f"{group}-regulator")

    await eventually(caught_up, within=840, interval=2)
    worker_ids = await _worker_ids(endpoints, [workers_database, "jz_workers"])
    scanned, hits = 0, {}
    for topic in [*REGULATOR_TOPICS.values(), INDICATORS_TOPIC]:
        for record in await read_topic(endpoints.kafka_bootstrap, topic):
            scanned += 1
            if found := _hits(record, worker_ids):
                hits[f"{topic}@{record.partition}:{record.offset}"] = found
    assert scanned > 0
    assert not hits, json.dumps(dict(list(hits.items())[:20]), ensure_ascii=False)

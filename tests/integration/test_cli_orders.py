"""`jiazheng orders …` as a platform runs it, against the session's orders and workers processes: an
order created and read back in yuan and masked, the catalogue, a match listing a GREEN worker with
its points and every rule's exclusions, an offer accepted and its contract written as PDF and HTML,
check-in by the worker's card to ratings, and refusals naming the field or the status."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from deploy.local.stack import Endpoints
from libs.common.beijing import BEIJING
from tests.integration.harness import RunningService, ServiceHarness, eventually
from tests.integration.workers_client import create_company, ready_worker

pytestmark = pytest.mark.integration
CLI = Path(sys.executable).with_name("jiazheng")
RULES = ["trade", "district", "skill_level", "health_tier", "card_colour", "credit_level", "free_slot"]


@dataclass(frozen=True)
class Run:
    """What a run of the CLI printed, and its exit code."""

    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err

    def rows(self) -> list[list[str]]:
        """The standard output's lines as words, without the tables' borders."""
        return [line.replace("│", " ").replace("┃", " ").split() for line in self.out.splitlines()]


def run(orders: RunningService, key: str, *args: str) -> Run:
    env = {**os.environ, "JZ_ORDERS_ADDRESS": f"127.0.0.1:{orders.port}", "JZ_API_KEY": key, "COLUMNS": "200"}
    result = subprocess.run([str(CLI), "orders", *args], env=env, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in result.stdout + result.stderr
    return Run(result.returncode, result.stdout, result.stderr)


async def jiazheng(orders: RunningService, key: str, *args: str) -> Run:
    return await asyncio.to_thread(run, orders, key, *args)


def start_day(days_ahead: int) -> str:
    return (datetime.now(BEIJING).date() + timedelta(days=days_ahead)).isoformat()


async def create(orders: RunningService, key: str, days_ahead: int, *extra: str) -> Run:
    """`orders create` of 4 hours of elderly care in 朝阳 at 10:00 (Beijing time, no offset given)."""
    return await jiazheng(
        orders,
        key,
        *("create", "--service-type", "elderly_care", "--district", "110105"),
        *("--start", f"{start_day(days_ahead)}T10:00", "--hours", "4", "--consumer-ref", "c-1"),
        *("--name", "张三", "--mobile", "13800001234", "--address", "北京市朝阳区望京西路8号"),
        *("--need", "elderly_client", "--json", *extra),
    )


async def created(orders: RunningService, key: str, days_ahead: int) -> str:
    made = await create(orders, key, days_ahead)
    assert made.code == 0, made.text
    return str(json.loads(made.out)["name"])


async def matched_with(orders: RunningService, key: str, order: str, worker: str) -> Run:
    """`orders match` once ``worker`` is among the candidates (the workers' events take a moment)."""

    async def listed() -> Run | None:
        matched = await jiazheng(orders, key, "match", order, "--max", "50")
        assert matched.code == 0, matched.text
        return matched if worker in matched.out else None

    return await eventually(listed, within=60, interval=1)


@pytest.fixture(scope="module")
async def ready(endpoints: Endpoints, harness: ServiceHarness, workers: RunningService) -> tuple[str, str]:
    """A GREEN family carer serving 朝阳 all week: its id and its card's verification link."""
    operator = harness.key("operator")
    company = await create_company(workers, operator)
    return await ready_worker(endpoints, workers, operator, company.name)


async def test_an_order_created_is_read_back_priced_in_yuan_and_masked_and_a_retry_creates_nothing(
    harness: ServiceHarness, orders: RunningService
) -> None:
    platform = harness.key("demo-platform")
    request_id = str(uuid.uuid4())
    first = await create(orders, platform, 4, "--request-id", request_id)
    assert first.code == 0, first.text
    name = json.loads(first.out)["name"]

    shown = await jiazheng(orders, platform, "get", name.removeprefix("orders/"))

    assert shown.code == 0, shown.text
    rows = shown.rows()
    assert ["name", name] in rows
    assert ["state", "created"] in rows
    assert ["price", "¥240.00"] in rows  # 4 hours at the catalogue's 60 yuan
    assert ["contact.mobile", "138****1234"] in rows
    assert ["scheduled_start_time", f"{start_day(4)}T02:00:00Z"] in rows  # 10:00 in Beijing
    assert "13800001234" not in shown.out
    again = await create(orders, platform, 4, "--request-id", request_id)
    assert json.loads(again.out)["name"] == name
    fresh = await create(orders, platform, 4)
    assert json.loads(fresh.out)["name"] != name
    assert "request id " in fresh.err


async def test_the_catalogue_shows_the_nine_service_types_with_prices_in_yuan(
    harness: ServiceHarness, orders: RunningService
) -> None:
    shown = await jiazheng(orders, harness.key("operator"), "catalogue")

    assert shown.code == 0, shown.text
    types = {r[0]: r[1:] for r in shown.rows() if len(r) > 6}
    assert set(types) - {"service"} == {
        *("cleaning", "live_in_housekeeper", "maternity", "infant_care", "elderly_care"),
        *("patient_care", "appliance_cleaning", "organising", "age_friendly_adaptation"),
    }
    assert types["elderly_care"] == ["family_carer", "5", "elderly_care", "4", "12", "¥60.00", "per", "hour"]
    assert types["live_in_housekeeper"][-4:] == ["¥7,000.00", "per", "624", "hours"]


async def test_a_match_shows_the_green_worker_with_its_points_and_what_each_rule_excluded(
    harness: ServiceHarness, orders: RunningService, ready: tuple[str, str]
) -> None:
    platform = harness.key("demo-platform")
    worker, _ = ready
    order = await created(orders, platform, 11)

    matched = await matched_with(orders, platform, order, worker)

    rows = matched.rows()
    row = next(r for r in rows if worker in r)
    assert row[-7:] == RULES
    score, *points = (int(n) for n in row[2:8])
    assert score == sum(points) > 0
    exclusions = [r for r in rows if len(r) == 2 and r[0] in RULES and r[1].isdigit()]
    assert [rule for rule, _ in exclusions] == RULES
    eligible = next(int(r[1]) for r in rows if r[:1] == ["eligible"])
    assert eligible >= 1


async def test_an_accepted_offer_makes_a_contract_written_as_pdf_and_the_order_runs_to_its_rating(
    harness: ServiceHarness, orders: RunningService, ready: tuple[str, str], tmp_path: Path
) -> None:
    platform = harness.key("demo-platform")
    worker, card_link = ready
    order = await created(orders, platform, 13)
    await matched_with(orders, platform, order, worker)

    offered = await jiazheng(orders, platform, "offer", order, "--worker-id", worker, "--json")
    assert offered.code == 0, offered.text
    offer = json.loads(offered.out)
    assert offer["worker"] == f"workers/{worker}"
    accepted = await jiazheng(orders, platform, "accept", offer["name"])
    assert accepted.code == 0, accepted.text
    rows = accepted.rows()
    assert ["order.state", "assigned"] in rows
    assert ["contract.terms.wage", "¥192.00"] in rows  # the price less the default 20 % fee
    default_clause = "10 % under 24 h' notice; 20 % under 2 h' notice"
    assert ["contract.terms.cancellation.consumer", *default_clause.split()] in rows
    assert ["contract.terms.cancellation.worker", *default_clause.split()] in rows
    contract = next(r[1] for r in rows if r[0] == "contract.name")

    pdf, html = tmp_path / "contract.pdf", tmp_path / "contract.html"
    written = await jiazheng(orders, platform, "contract", contract, "--pdf", str(pdf), "--html", str(html))
    assert written.code == 0, written.text
    assert pdf.read_bytes().startswith(b"%PDF")
    document = pdf.read_bytes()
    assert f"{len(document)} bytes) SHA-256 {hashlib.sha256(document).hexdigest()}" in written.out
    shown = await jiazheng(orders, platform, "contract", contract)
    content_hash = next(r[1] for r in shown.rows() if r[0] == "content_sha256")
    assert content_hash in html.read_text(encoding="utf-8")

    steps = [
        (("check-in", order, "--card", card_link), ["state", "checked_in"]),
        (("check-out", order), ["state", "completed"]),
        (("rate", order, "--by", "consumer", "--stars", "5"), ["consumer_rating", "5"]),
    ]
    for args, expected in steps:
        done = await jiazheng(orders, platform, *args)
        assert done.code == 0, done.text
        assert expected in done.rows()


async def test_refusals_exit_non_zero_naming_the_field_or_the_status(
    harness: ServiceHarness, orders: RunningService
) -> None:
    platform = harness.key("demo-platform")
    refused = await create(orders, platform, 4, "--district", "110103")  # 崇文: no longer a district
    assert refused.code == 1
    assert "INVALID_ARGUMENT: order.district_code:" in refused.text

    order = await created(orders, platform, 4)
    hidden = await jiazheng(orders, harness.key("other-platform"), "get", order)
    assert hidden.code == 1
    assert "NOT_FOUND" in hidden.text
    cancelled = await jiazheng(
        orders, platform, "cancel", order, "--by", "consumer", "--reason", "plans changed"
    )
    assert cancelled.code == 0, cancelled.text
    assert ["state", "cancelled"] in cancelled.rows()

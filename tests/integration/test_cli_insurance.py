"""`jiazheng insurance …` as a company and an insurer run it, against a real insurance process: the
products with DOMAIN §8's employer-liability prices, a quote equal to the table, a group policy of
two workers shown with their stints, a 批增 with its pro-rata premium change, an age of 71 refused
naming birth_date without a traceback, claims and uncovered orders answering for the company, and
the principal each command calls as by default."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from deploy.local.services import DEMO_COMPANY_ID, stopped_after
from deploy.local.stack import Endpoints
from deploy.local.stack import scratch_database as new_scratch_database
from services.orders.domain.contract import format_yuan
from tests.integration.harness import RunningService, ServiceHarness
from tests.integration.insurance_client import beijing_today
from tests.integration.test_cli_orders import CLI, Run

pytestmark = pytest.mark.integration
# DOMAIN §8, employer liability for job classes 1–2: each price range read as the age loading,
# by age band 16–50, 51–60, 61–70 (docs/insurance.md, "The seeded grid").
GRID = {
    "el-100k": ("¥70.00", "¥75.00", "¥80.00"),
    "el-300k": ("¥100.00", "¥108.00", "¥115.00"),
    "el-500k": ("¥180.00", "¥195.00", "¥210.00"),
    "el-800k": ("¥270.00", "¥290.00", "¥310.00"),
}
EL_100K = (7000, 7500, 8000)


@pytest.fixture(scope="module")
async def insurance(
    harness: ServiceHarness, endpoints: Endpoints, orders_keys: dict[str, str]
) -> AsyncIterator[RunningService]:
    pii = {k: v for k, v in orders_keys.items() if k.startswith("pii_")}
    async with new_scratch_database(endpoints, "jz_insurance_cli_test") as database:
        svc = await harness.start("insurance", database, 0, False, **pii)
        async with stopped_after(svc):  # before its scratch database is dropped
            yield svc


def run(insurance: RunningService, key: str, *args: str, home: Path | None = None) -> Run:
    """The CLI with ``key``; without one, with the keys of the stack in ``home``."""
    env = {**os.environ, "JZ_INSURANCE_ADDRESS": f"127.0.0.1:{insurance.port}", "COLUMNS": "250"}
    env.pop("JZ_API_KEY", None)
    env.update({"JZ_API_KEY": key} if key else {"JZ_STACK_HOME": str(home)})
    command = [str(CLI), "insurance", *args]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in result.stdout + result.stderr
    return Run(result.returncode, result.stdout, result.stderr)


async def jiazheng(insurance: RunningService, key: str, *args: str, home: Path | None = None) -> Run:
    return await asyncio.to_thread(run, insurance, key, *args, home=home)


async def succeeds(insurance: RunningService, key: str, *args: str) -> Run:
    done = await jiazheng(insurance, key, *args)
    assert done.code == 0, done.text
    return done


def cells(run: Run, text: str) -> list[str]:
    """The cells of the first table row holding ``text``."""
    line = next(line for line in run.out.splitlines() if text in line)
    return [cell.strip() for cell in line.strip("│ ").split("│")]


def born(age: int) -> str:
    """A birth date that makes someone ``age`` in full years today (1 January)."""
    return date(beijing_today().year - age, 1, 1).isoformat()


def pro_rata(annual: int, days: int, year_days: int) -> int:
    return (2 * annual * days + year_days) // (2 * year_days)


async def test_products_carry_the_domain_prices_and_a_quote_equals_the_table(
    harness: ServiceHarness, insurance: RunningService
) -> None:
    company = harness.key("demo-company")

    listed = await succeeds(insurance, company, "products")

    assert cells(listed, "products/el-100k")[2:] == [
        "demo-insurer",
        "employer_liability ¥100,000.00 / ¥200.00",
    ]
    for product, prices in GRID.items():
        shown = await succeeds(insurance, company, "product", product)
        for job_class in ("1", "2"):
            assert cells(shown, f"│ {job_class} ") == [job_class, *prices], (product, shown.out)
    quoted = await succeeds(
        insurance, company, "quote", "--product", "el-100k", "--job-class", "2", "--age", "55"
    )
    assert ["annual_premium", "¥75.00", "(7500", "fen)"] in quoted.rows()
    assert ["term_premium", "¥75.00", "(7500", "fen)"] in quoted.rows()  # a full policy year
    start, end = beijing_today() + timedelta(days=1), beijing_today() + timedelta(days=30)
    term = await succeeds(
        insurance,
        company,
        *("quote", "--product", "products/el-100k", "--job-class", "2", "--birth-date", born(30)),
        *("--start", start.isoformat(), "--end", end.isoformat(), "--json"),
    )
    reply = json.loads(term.out)
    assert reply["annual_premium_fen"] == str(EL_100K[0])
    assert reply["term_days"] == 30
    assert int(reply["term_premium_fen"]) == pro_rata(EL_100K[0], 30, reply["policy_year_days"])


async def test_a_policy_of_two_workers_is_shown_and_an_endorsement_adds_one_with_its_premium_change(
    harness: ServiceHarness, insurance: RunningService
) -> None:
    company, today = harness.key("demo-company"), beijing_today()
    end = date(today.year + 1, today.month, today.day) - timedelta(days=1)
    w1, w2, w3 = (str(uuid.uuid4()) for _ in range(3))
    created = await succeeds(
        insurance,
        company,
        *("policy", "create", "--product", "el-100k", "--start", today.isoformat()),
        *(
            "--worker",
            f"{w1}:{born(30)}:2:cleaning,elderly_care",
            "--worker",
            f"{w2}:{born(55)}:1:infant_care",
        ),
        "--json",
    )
    name = json.loads(created.out)["name"]

    shown = await succeeds(insurance, company, "policy", "show", name)

    rows = shown.rows()
    assert ["premium", "¥145.00"] in rows  # a full policy year each: ¥70 (30) + ¥75 (55)
    assert ["state", "active"] in rows
    assert ["end_date", end.isoformat()] in rows
    stint = [born(30), "2", "cleaning, elderly_care", today.isoformat(), end.isoformat(), "¥70.00"]
    assert cells(shown, w1)[1:] == stint
    assert cells(shown, w2)[1:] == [
        born(55),
        "1",
        "infant_care",
        today.isoformat(),
        end.isoformat(),
        "¥75.00",
    ]

    tomorrow = today + timedelta(days=1)
    endorsed = await succeeds(
        insurance,
        company,
        *("policy", "endorse", name.removeprefix("policies/"), "--effective", tomorrow.isoformat()),
        *("--add", f"workers/{w3}:{born(65)}:2:elderly_care"),
    )
    change = format_yuan(pro_rata(EL_100K[2], (end - today).days, (end - today).days + 1))
    assert cells(endorsed, w3)[1:] == ["add", tomorrow.isoformat(), w3, "", change]
    after = await succeeds(insurance, company, "policy", "show", name)
    assert cells(after, w3)[-3:] == [tomorrow.isoformat(), end.isoformat(), "¥80.00"]  # the stint
    assert cells(after, "│ add ")[-1] == change  # the endorsement, in the policy
    listed = await succeeds(insurance, company, "policy", "list")
    assert cells(listed, name)[1:] == [
        f"companies/{DEMO_COMPANY_ID}",
        "products/el-100k",
        today.isoformat(),
        end.isoformat(),
        "active",
        "3",
        "¥145.00",
    ]


async def test_an_age_of_71_is_refused_naming_birth_date_without_a_traceback(
    harness: ServiceHarness, insurance: RunningService
) -> None:
    company, today = harness.key("demo-company"), beijing_today().isoformat()
    worker = f"{uuid.uuid4()}:{born(71)}:2:elderly_care"

    refused = await jiazheng(
        insurance, company, "policy", "create", "--product", "el-100k", "--start", today, "--worker", worker
    )

    assert refused.code == 1
    assert "INVALID_ARGUMENT" in refused.text
    assert "birth_date" in refused.text
    assert "71" in refused.text
    both = await jiazheng(
        insurance,
        company,
        "quote",
        "--product",
        "el-100k",
        "--job-class",
        "2",
        "--age",
        "30",
        "--birth-date",
        today,
    )
    assert both.code == 2
    assert "give exactly one" in both.text
    malformed = await jiazheng(
        insurance, company, "policy", "create", "--product", "el-100k", "--start", today, "--worker", "w:1"
    )
    assert malformed.code == 2
    assert "WORKER:BIRTH_DATE:JOB_CLASS:TYPE" in malformed.text


async def test_claims_and_uncovered_orders_answer_for_the_company(
    harness: ServiceHarness, insurance: RunningService
) -> None:
    company = harness.key("demo-company")

    claims = await succeeds(insurance, company, "claims", "list", "--state", "filed")
    uncovered = await succeeds(insurance, company, "uncovered", "--json")

    assert ["claim", "order", "kind", "state", "claimed", "decision", "payable"] in claims.rows()
    assert json.loads(uncovered.out) == []  # no order of this database was ever accepted
    unknown = await jiazheng(insurance, company, "claims", "show", str(uuid.uuid4()))
    assert unknown.code == 1
    assert "NOT_FOUND" in unknown.text
    bad_state = await jiazheng(insurance, company, "claims", "list", "--state", "lost")
    assert bad_state.code == 2
    assert "--state" in bad_state.text


async def test_commands_call_as_the_company_the_insurer_adjudicates_and_pays_and_as_overrides(
    harness: ServiceHarness, insurance: RunningService, tmp_path: Path
) -> None:
    (tmp_path / "api-keys.json").write_text(json.dumps([k.__dict__ for k in harness.keys]))
    claim = f"claims/{uuid.uuid4()}"

    def as_default(*args: str) -> Run:
        return run(insurance, "", *args, home=tmp_path)

    by_insurer, paid = await asyncio.gather(
        asyncio.to_thread(as_default, "claims", "adjudicate", claim, "--assessed-fen", "100"),
        asyncio.to_thread(as_default, "claims", "pay", claim),
    )
    # The insurer may adjudicate and pay: an unknown claim is NOT_FOUND, not PERMISSION_DENIED.
    assert by_insurer.code == paid.code == 1
    assert "NOT_FOUND" in by_insurer.text
    assert "NOT_FOUND" in paid.text
    by_company = await asyncio.to_thread(as_default, "--as", "demo-company", "claims", "pay", claim)
    assert by_company.code == 1
    assert "PERMISSION_DENIED" in by_company.text
    contested = await asyncio.to_thread(as_default, "claims", "contest", claim, "--reason", "在服务时间内")
    assert contested.code == 1
    assert "NOT_FOUND" in contested.text
    uncovered = await asyncio.to_thread(as_default, "uncovered")  # insurers may not list them
    assert uncovered.code == 0, uncovered.text
    as_insurer = await asyncio.to_thread(as_default, "--as", "demo-insurer", "uncovered")
    assert as_insurer.code == 1
    assert "PERMISSION_DENIED" in as_insurer.text

"""`jiazheng complaints …` and `jiazheng mediation …` as platforms, companies, mediators, a union and
operators run them, against the session's complaints process: a complaint filed and read back with
its deadline in Beijing time, a rejected one in the mediation queue, a claim with its lease to an
agreement performed, a wage dispute ended to legal aid in the referrals, and refusals that exit
non-zero without a traceback."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from deploy.local.services import DEMO_COMPANY_ID
from libs.common.beijing import BEIJING
from tests.integration.harness import RunningService, ServiceHarness
from tests.integration.test_cli_orders import CLI, Run

pytestmark = pytest.mark.integration
TIME_LEFT = re.compile(r"^\d+d \d\dh$")


def run(complaints: RunningService, key: str, *args: str) -> Run:
    env = {
        **os.environ,
        "JZ_COMPLAINTS_ADDRESS": f"127.0.0.1:{complaints.port}",
        "JZ_API_KEY": key,
        "COLUMNS": "220",
    }
    result = subprocess.run([str(CLI), *args], env=env, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in result.stdout + result.stderr
    return Run(result.returncode, result.stdout, result.stderr)


async def jiazheng(complaints: RunningService, key: str, *args: str) -> Run:
    """The CLI's run, which must succeed."""
    done = await asyncio.to_thread(run, complaints, key, *args)
    assert done.code == 0, done.text
    return done


def in_beijing(utc_json: str) -> list[str]:
    """A protobuf JSON time as the CLI prints it in Beijing time, split into words."""
    moment = datetime.fromisoformat(utc_json).astimezone(BEIJING)
    return moment.isoformat(sep=" ", timespec="minutes").split()


def cells(run: Run, case: str) -> list[str]:
    """The cells of the table row of ``case`` (cases/<id>)."""
    line = next(line for line in run.out.splitlines() if case.removeprefix("cases/") in line)
    return [cell.strip() for cell in line.strip("│ ").split("│")]


async def filed(
    complaints: RunningService, harness: ServiceHarness, severity: str = "major"
) -> dict[str, str]:
    """A complaint of the demo platform against the demo company, as JSON."""
    done = await jiazheng(
        complaints,
        harness.key("demo-platform"),
        *("complaints", "file", "--company", DEMO_COMPANY_ID, "--against", "company"),
        *("--category", "quality", "--severity", severity, "--evidence", "photos/kitchen-1.jpg"),
        *("--description", "阿姨打扫不干净", "--json"),
    )
    case: dict[str, str] = json.loads(done.out)
    return case


async def rejected(complaints: RunningService, harness: ServiceHarness, severity: str) -> dict[str, str]:
    """A complaint the demo company rejected: in the consumer association's queue, as JSON."""
    case = await filed(complaints, harness, severity)
    done = await jiazheng(
        complaints, harness.key("demo-company"), "complaints", "reject", case["name"], "--json"
    )
    in_mediation: dict[str, str] = json.loads(done.out)
    assert in_mediation["state"] == "CASE_STATE_IN_MEDIATION"
    return in_mediation


async def test_a_complaint_filed_is_read_back_with_its_first_response_deadline_in_beijing_time(
    harness: ServiceHarness, complaints: RunningService
) -> None:
    case = await filed(complaints, harness)

    shown = await jiazheng(complaints, harness.key("demo-platform"), "complaints", "get", case["name"])

    rows = shown.rows()
    assert ["name", case["name"]] in rows
    assert ["kind", "complaint"] in rows
    assert ["state", "filed"] in rows
    assert ["severity", "major"] in rows
    assert ["description", "阿姨打扫不干净"] in rows
    assert ["deadline_kind", "first_response"] in rows
    assert ["deadline", *in_beijing(case["deadline"])] in rows
    created = datetime.fromisoformat(case["create_time"])
    assert datetime.fromisoformat(case["deadline"]) - created == timedelta(hours=24)
    assert ["create_time", *in_beijing(case["create_time"])] in rows
    assert in_beijing(case["create_time"])[1].endswith("+08:00")


async def test_a_rejected_complaint_is_in_the_mediation_queue_with_its_deadline_until_withdrawn(
    harness: ServiceHarness, complaints: RunningService
) -> None:
    case = await rejected(complaints, harness, "minor")
    mediator = harness.key("consumer-mediator")

    queued = await jiazheng(complaints, mediator, "mediation", "queue", "--max", "200")

    row = cells(queued, case["name"])
    assert row[1:5] == ["complaint", "quality", "minor", "waiting"]
    assert row[6] == f"{' '.join(in_beijing(case['deadline']))} (mediation)"
    assert TIME_LEFT.match(row[7]), row  # 45 working days ahead
    await jiazheng(complaints, harness.key("demo-platform"), "complaints", "withdraw", case["name"])
    after = await jiazheng(complaints, mediator, "mediation", "queue", "--max", "200")
    assert case["name"].removeprefix("cases/") not in after.out


async def test_a_mediator_claims_a_case_under_a_lease_and_records_an_agreement_performed(
    harness: ServiceHarness, complaints: RunningService
) -> None:
    await rejected(complaints, harness, "severe")
    mediator = harness.key("consumer-mediator")
    before = datetime.now(UTC)

    claimed = await jiazheng(complaints, mediator, "mediation", "claim")

    rows = claimed.rows()
    assert ["state", "in_mediation"] in rows
    assert ["mediator", "consumer-mediator"] in rows
    lease = next(r[1:] for r in rows if r[:1] == ["lease_expire_time"])
    assert lease[1].endswith("+08:00")
    lease_until = datetime.fromisoformat(" ".join(lease))
    assert timedelta(minutes=29) <= lease_until - before <= timedelta(minutes=31)
    name = next(r[1] for r in rows if r[:1] == ["name"])
    workload = await jiazheng(complaints, mediator, "mediation", "workload")
    assert int(next(r[1] for r in workload.rows() if r[:1] == ["consumer-mediator"])) >= 1

    due = (datetime.now(BEIJING).date() + timedelta(days=30)).isoformat()
    agreed = await jiazheng(
        complaints,
        mediator,
        *("mediation", "agree", name, "--facts", "厨房未清洁", "--responsibility", "公司负责返工"),
        *("--undertaking", f"company:重新打扫:{due}", "--result", "partly_substantiated"),
        *("--at-fault", "company", "--compensation-fen", "20000"),
    )
    rows = agreed.rows()
    assert ["state", "agreement"] in rows
    assert ["deadline_kind", "agreement_follow_up"] in rows
    assert ["outcome.compensation", "¥200.00"] in rows
    assert ["agreement.undertakings", "company:", "重新打扫", "by", due] in rows
    done = await jiazheng(complaints, mediator, "mediation", "performed", name)
    assert ["state", "resolved"] in done.rows()


async def test_a_wage_dispute_ended_to_legal_aid_is_in_the_referrals_until_accepted(
    harness: ServiceHarness, complaints: RunningService
) -> None:
    disputed = await jiazheng(
        complaints,
        harness.key("union"),
        *("complaints", "dispute", "--worker", str(uuid.uuid4()), "--against", "company"),
        *("--company", DEMO_COMPANY_ID, "--category", "unpaid_wages", "--severity", "major"),
        *("--description", "三个月工资未发", "--employee", "--json"),
    )
    name = json.loads(disputed.out)["name"]
    operator = harness.key("operator")
    await jiazheng(complaints, harness.key("demo-company"), "complaints", "reject", name)
    held = await jiazheng(
        complaints, operator, "mediation", "reassign", name, "--mediator", "peoples-mediator"
    )
    assert ["mediator", "peoples-mediator"] in held.rows()

    ended = await jiazheng(
        complaints, harness.key("peoples-mediator"), "mediation", "end", name, "--route", "legal-aid"
    )
    assert ["state", "escalated"] in ended.rows()
    assert ["escalation_route", "legal_aid"] in ended.rows()

    referrals = await jiazheng(complaints, operator, "mediation", "referrals", "--max", "200")
    row = cells(referrals, name)
    assert row[1] == "labour"
    assert row[3].endswith("+08:00")
    assert row[4] == "open"
    assert row[5] not in ("-", "overdue")
    await jiazheng(complaints, operator, "mediation", "accept-referral", name)
    after = await jiazheng(complaints, operator, "mediation", "referrals", "--max", "200")
    assert cells(after, name)[4:] == ["accepted", "-"]


async def test_a_bad_severity_is_refused_before_any_call_naming_the_choices(
    harness: ServiceHarness, complaints: RunningService
) -> None:
    refused = await asyncio.to_thread(
        run,
        complaints,
        harness.key("demo-platform"),
        *("complaints", "file", "--company", DEMO_COMPANY_ID, "--against", "company"),
        *("--category", "quality", "--severity", "catastrophic", "--description", "x"),
    )

    assert refused.code != 0
    assert "--severity" in refused.text
    assert "minor, major, severe" in refused.text


async def test_another_platforms_key_gets_not_found(
    harness: ServiceHarness, complaints: RunningService
) -> None:
    case = await filed(complaints, harness)

    hidden = await asyncio.to_thread(
        run, complaints, harness.key("other-platform"), "complaints", "get", case["name"]
    )

    assert hidden.code == 1
    assert "NOT_FOUND" in hidden.text
    assert "阿姨打扫不干净" not in hidden.text

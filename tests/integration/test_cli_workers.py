"""`jiazheng workers …` as a user runs it, against the session's workers process: companies and
workers registered from the command line, errors with their field, and the CSV import (bad rows
reported by line, good ones registered, a rerun registering nobody twice)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.harness import RunningService, ServiceHarness
from tests.integration.workers_client import create_worker, id_number, social_credit_code

CLI = Path(sys.executable).with_name("jiazheng")
HEADER = "id_number,full_name,mobile,photo_ref,service_districts,trades,origin_province"


@dataclass(frozen=True)
class Run:
    code: int
    out: str


def run(workers: RunningService, key: str, *args: str) -> Run:
    env = {
        **os.environ,
        "JZ_WORKERS_ADDRESS": f"127.0.0.1:{workers.port}",
        "JZ_API_KEY": key,
        "COLUMNS": "200",
    }
    result = subprocess.run([str(CLI), *args], env=env, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in result.stdout + result.stderr
    return Run(result.returncode, result.stdout + result.stderr)


async def jiazheng(workers: RunningService, key: str, *args: str) -> Run:
    return await asyncio.to_thread(run, workers, key, *args)


@pytest.fixture
async def company(harness: ServiceHarness, workers: RunningService) -> str:
    """A company registered with `jiazheng workers company create`, read back with `company get`."""
    operator = harness.key("operator")
    created = await jiazheng(
        workers,
        operator,
        *("workers", "company", "create", "--credit-code", social_credit_code(), "--name", "北京安心家政"),
        *("--premises", "60", "--outlet", "望京网点=110105", "--model", "intermediary", "--json"),
    )
    assert created.code == 0, created.out
    name = str(json.loads(created.out)["name"])
    shown = await jiazheng(workers, operator, "workers", "company", "get", name)
    assert shown.code == 0, shown.out
    assert "北京安心家政" in shown.out
    assert "intermediary" in shown.out
    return name


async def listed_ids(workers: RunningService, key: str, company: str) -> list[str]:
    listed = await jiazheng(workers, key, "workers", "list", "--company", company, "--json")
    assert listed.code == 0, listed.out
    return sorted(w["masked_id_number"] for w in json.loads(listed.out))


def masked(number: str) -> str:
    return number[:3] + "*" * 11 + number[-4:]


async def test_a_worker_registered_from_the_command_line_is_shown_masked(
    harness: ServiceHarness, workers: RunningService, company: str
) -> None:
    number = id_number()
    args = ["workers", "register", "--company", company, "--id-number", number, "--name", "张三"]
    args += [
        "--mobile",
        "13712345678",
        "--photo",
        "p/z.jpg",
        "--district",
        "110108",
        "--trade",
        "family-carer",
    ]
    registered = await jiazheng(workers, harness.key("operator"), *args, "--json")
    assert registered.code == 0, registered.out
    worker = json.loads(registered.out)
    assert worker["masked_id_number"] == masked(number)

    shown = await jiazheng(workers, harness.key("operator"), "workers", "get", worker["name"])
    assert shown.code == 0, shown.out
    rows = [line.split() for line in shown.out.splitlines()]
    assert ["masked_full_name", "张*"] in rows
    assert ["trades", "family_carer"] in rows
    assert number not in shown.out

    again = await jiazheng(workers, harness.key("operator"), *args, "--json")  # the same request again
    assert json.loads(again.out)["name"] == worker["name"]


async def test_a_refused_command_prints_the_status_and_the_field_and_exits_non_zero(
    harness: ServiceHarness, workers: RunningService, company: str
) -> None:
    wrong = id_number()[:-1] + "Z"  # passes nothing: the contract's pattern refuses it
    args = ["workers", "register", "--company", company, "--id-number", wrong, "--name", "李四"]
    args += ["--mobile", "13712345678", "--photo", "p.jpg", "--district", "110105", "--trade", "housekeeper"]
    refused = await jiazheng(workers, harness.key("operator"), *args)
    assert refused.code == 1
    assert "INVALID_ARGUMENT: id_number:" in refused.out

    denied = await jiazheng(workers, harness.key("demo-platform"), "workers", "company", "get", company)
    assert denied.code == 1
    assert "PERMISSION_DENIED" in denied.out


async def test_pay_bands_list_every_level(harness: ServiceHarness, workers: RunningService) -> None:
    bands = await jiazheng(workers, harness.key("demo-platform"), "workers", "pay-bands", "--json")
    assert bands.code == 0, bands.out
    assert [b["level"] for b in json.loads(bands.out)] == [
        "SKILL_LEVEL_5",
        "SKILL_LEVEL_4",
        "SKILL_LEVEL_3",
        "SKILL_LEVEL_2",
    ]


def csv_line(number: str, districts: str = "110105;110108", trades: str = "housekeeper") -> str:
    return f"{number},王芳,13912345678,photos/w.jpg,{districts},{trades},"


async def test_an_import_reports_bad_rows_by_line_registers_the_good_ones_and_a_rerun_registers_none_twice(
    harness: ServiceHarness, workers: RunningService, company: str, tmp_path: Path
) -> None:
    operator = harness.key("operator")
    good = [id_number() for _ in range(3)]
    registered_elsewhere = id_number()
    await create_worker(workers, operator, company, id_number=registered_elsewhere)
    wrong_check = good[0][:-1] + ("0" if good[0][-1] != "0" else "1")
    lines = [
        HEADER,
        csv_line(good[0]),  # line 2
        csv_line(wrong_check),  # 3: the check character is wrong
        csv_line(good[1], districts="110105;110103"),  # 4: 110103 is no longer a district (崇文)
        csv_line(good[1].lower(), trades="maternity-nurse"),  # 5: a different row for line 4's ID
        csv_line(good[1]),  # 6: the ID number of line 4 again
        csv_line(registered_elsewhere),  # 7: registered before, by another request
        csv_line(good[2], trades="housekeeper;family_carer"),  # 8
        csv_line(id_number(), trades="gardener"),  # 9: no such trade
    ]
    file = tmp_path / "workers.csv"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    first = await jiazheng(workers, operator, "workers", "import", str(file), "--company", company)

    assert first.code == 1, first.out
    out = first.out.splitlines()
    assert [line.split(": ")[1] for line in out if line.startswith("line ")] == [
        "registered",
        "failed",
        "failed",
        "failed",
        "failed",
        "already registered",
        "registered",
        "failed",
    ]
    assert "line 3: failed: INVALID_ARGUMENT: id_number: check character does not match (GB 11643)" in out
    assert any(line.startswith("line 4: failed: INVALID_ARGUMENT: service_districts[1]") for line in out)
    assert "line 5: failed: the ID number of line 4 again" in out
    assert "line 6: failed: the ID number of line 4 again" in out
    assert any(line.startswith("line 9: failed: trades: 'gardener' is not one of") for line in out)
    assert "registered 2, already registered 1, failed 5" in out
    expected = sorted(masked(n) for n in (good[0], good[2], registered_elsewhere))
    assert await listed_ids(workers, operator, company) == expected

    rerun = await jiazheng(workers, operator, "workers", "import", str(file), "--company", company)

    assert rerun.code == 1, rerun.out
    assert "registered 0, already registered 3, failed 5" in rerun.out.splitlines()
    assert "line 2: already registered: workers/" in rerun.out
    assert await listed_ids(workers, operator, company) == expected


async def test_a_card_issued_verified_and_drawn_as_a_qr_code_from_the_command_line(
    harness: ServiceHarness, workers: RunningService, company: str, tmp_path: Path
) -> None:
    operator = harness.key("operator")
    worker = await create_worker(workers, operator, company, id_number=id_number())
    issued = await jiazheng(workers, operator, "card", "issue", worker.name, "--json")
    assert issued.code == 0, issued.out
    card = json.loads(issued.out)

    verified = await jiazheng(workers, harness.key("demo-platform"), "card", "verify", card["token"])
    assert verified.code == 0, verified.out
    rows = [line.split() for line in verified.out.splitlines()]
    assert ["verdict", "valid"] in rows
    assert ["colour", "yellow"] in rows  # no background or health check yet
    assert any(row[0] == "reasons" and len(row) > 1 for row in rows)
    assert ["worker.masked_full_name", "王*"] in rows

    tampered = card["token"][:-4] + ("AAAA" if not card["token"].endswith("AAAA") else "BAAA")
    refused = await jiazheng(workers, harness.key("demo-platform"), "card", "verify", tampered, "--json")
    assert refused.code == 1
    assert json.loads(refused.out)["verdict"] == "TOKEN_VERDICT_BAD_SIGNATURE"

    for image_format, start in (("png", b"\x89PNG"), ("svg", b"<?xml")):
        out = tmp_path / f"card.{image_format}"
        drawn = await jiazheng(
            workers, operator, "card", "qr", card["name"], "--format", image_format, "--out", str(out)
        )
        assert drawn.code == 0, drawn.out
        assert out.read_bytes().startswith(start)

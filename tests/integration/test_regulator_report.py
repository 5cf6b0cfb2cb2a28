"""The policy implementation report on the real stack: a generated week of activity produced as the
producing services' events to their real topics, projected and counted by a real regulator
process, then ``jiazheng report`` run as a command for that week. It exits 0, prints every part's
tables, writes every PNG and the PDF readable, and the whole week's figures it prints equal those
this test computes from the facts it generated.

The week is R2's generated day (tests/integration/test_regulator_indicators.Activity) seven times,
in districts outside Beijing's codes that are new each run, so nothing else on the stack counts."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pypdf
from PIL import Image

from cli.report import CHARTS, PARTS, TERMINAL_COLUMNS, Indicator, Report
from deploy.local.stack import Endpoints
from jiazheng.regulator.v1 import regulator_pb2 as pb
from jiazheng.regulator.v1 import regulator_pb2_grpc
from libs.common.beijing import beijing_day
from libs.common.kafka import events_topic
from tests.integration.harness import RunningService, ServiceHarness, eventually
from tests.integration.test_regulator_indicators import (
    AGE_FRIENDLY,
    ELDERLY,
    LEVELS,
    SKILLS,
    Activity,
    expected,
    fresh_districts,
)
from tests.integration.workers_client import produce

SEED = 1104
DAYS = 7
JIAZHENG = Path(sys.executable).parent / "jiazheng"


def the_week(districts: list[str]) -> list[Activity]:
    """Seven generated days ending yesterday (Beijing): the oldest is still inside the grace period."""
    yesterday = beijing_day(datetime.now(UTC)) - timedelta(days=1)
    days = [yesterday - timedelta(days=DAYS - 1 - n) for n in range(DAYS)]
    return [Activity(SEED + n, day, districts) for n, day in enumerate(days)]


def week_figures(week: list[Activity], districts: list[str]) -> dict[str, float | None]:
    """Each indicator over the week and the districts, from the generated facts (docs/regulators.md)."""
    orders = [o for a in week for o in a.orders]
    cases = [c for a in week for c in a.cases]
    workers = [w for a in week for w in a.workers]
    days = [expected(a, d) for a in week for d in districts]  # each district day's own figures
    placed, dispatched = len(orders), sum(1 for o in orders if o.assigned)
    insured, uninsured = (sum(1 for o in orders if o.covered is c) for c in (True, False))
    figures: dict[str, float | None] = {
        "orders placed": placed,
        "orders completed": sum(1 for o in orders if o.completed),
        "orders dispatched": dispatched,
        "GREEN share of dispatch": sum(d.dispatched_green for d in days) / dispatched,
        "complaints": len(cases),
        "per 1,000 orders": 1000 * len(cases) / placed,
        "median 1st response h": median_hours([d.median_first_response_seconds for d in days]),
        "median resolution h": median_hours([d.median_resolution_seconds for d in days]),
        "dispatched insured": insured,
        "dispatched uninsured": uninsured,
        "insured share": insured / (insured + uninsured),
        "elderly-care orders": sum(1 for o in orders if o.service == ELDERLY),
        "age-friendly orders": sum(1 for o in orders if o.service == AGE_FRIENDLY),
        "mediation backlog (end)": sum(1 for c in cases if c.mediation and c.mediation[1] is None),
        "SLA breaches": sum(c.breaches for c in cases),
        "districts reporting": len(districts),
        "days reported": len(week),
    }
    # At the week's end each worker holds its last level, in each district it serves.
    final_levels = [LEVELS[sorted(w.levels)[-1][1]] for w in workers for _ in w.districts]
    figures |= {f"credit {lv}": final_levels.count(lv) for lv in "ABCD"}
    skills = [SKILLS[w.skill[1]] for w in workers if w.skill for _ in w.districts]
    return figures | {f"level {n}": skills.count(n) for n in (5, 4, 3, 2)}


def median_hours(seconds: list[int]) -> float | None:
    cased = [s for s in seconds if s > 0]
    return statistics.median(cased) / 3600 if cased else None


def whole_rows(figures: Callable[[Indicator], float | None]) -> list[list[str]]:
    """The rows of the whole week the report prints, in order: each part's district view and trend
    view, each as tables of at most TERMINAL_COLUMNS indicators."""
    rows = []
    for part in PARTS:
        cells = [i.text(figures(i)) for i in part.indicators]
        chunks = [cells[n : n + TERMINAL_COLUMNS] for n in range(0, len(cells), TERMINAL_COLUMNS)]
        rows += [["合计 all", *chunk] for _ in ("by district", "by day") for chunk in chunks]
    return rows


def printed_whole_rows(output: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.split("│")[1:-1]] for line in output.splitlines() if "合计 all" in line
    ]


async def indicators_reach(
    regulator: RunningService, key: str, week: list[Activity], want: list[list[str]]
) -> None:
    """Until ListIndicators answers the week's figures the test expects (the events take a while
    to be projected and counted)."""
    first, last = week[0].day, week[-1].day
    districts = week[0].districts
    request = pb.ListIndicatorsRequest(
        start_date=first.isoformat(), end_date=last.isoformat(), district_codes=districts
    )

    async def answered() -> list[list[str]]:
        async with regulator.channel() as channel:
            stub = regulator_pb2_grpc.RegulatorServiceStub(channel)
            reply = await stub.ListIndicators(request, metadata=[("authorization", f"Bearer {key}")])
        report = Report(first, last, tuple(districts), tuple(reply.days))
        return whole_rows(lambda i: i.of(report.days))

    async def reached() -> bool:
        return await answered() == want

    try:
        await eventually(reached, within=240, interval=2)
    finally:
        assert await answered() == want  # what differs, when it did not come


def run_report(address: str, key: str, week: list[Activity], out: Path) -> subprocess.CompletedProcess[str]:
    """``jiazheng report`` for the week and its districts, as a regulator runs it."""
    districts = [arg for d in week[0].districts for arg in ("--district", d)]
    dates = ["--from", week[0].day.isoformat(), "--to", week[-1].day.isoformat()]
    env = {**os.environ, "JZ_API_KEY": key, "JZ_REGULATOR_ADDRESS": address}
    command = [str(JIAZHENG), "report", *dates, *districts, "--out", str(out)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)


def assert_readable(out: Path) -> None:
    for chart in CHARTS:
        with Image.open(out / f"{chart.name}.png") as image:
            image.verify()
            assert image.format == "PNG"
    pages = [page.extract_text() for page in pypdf.PdfReader(out / "report.pdf").pages]
    assert "北京市家政服务政策落实情况报告" in pages[0]
    heads = [n for n, text in enumerate(pages) for part in PARTS if text.startswith(f"第{part.number}部分")]
    assert len(heads) == len(PARTS)
    assert heads == sorted(heads)


async def test_the_report_of_a_generated_week_shows_the_figures_the_test_produced(
    endpoints: Endpoints, harness: ServiceHarness, tmp_path: Path
) -> None:
    districts = await fresh_districts(endpoints.kafka_bootstrap, 3)
    week = the_week(districts)
    regulator = await harness.start(
        "regulator", supervised=True, consumer_group_prefix=f"test-r4-{uuid.uuid4().hex[:8]}"
    )
    for activity in week:
        for service, envelopes in activity.events().items():
            await produce(endpoints.kafka_bootstrap, events_topic(service), *envelopes)
    figures = week_figures(week, districts)
    assert set(figures) == {i.en for part in PARTS for i in part.indicators}
    want = whole_rows(lambda i: figures[i.en])
    key = harness.key("regulator")
    await indicators_reach(regulator, key, week, want)

    done = await asyncio.to_thread(run_report, f"127.0.0.1:{regulator.port}", key, week, tmp_path)
    assert done.returncode == 0, done.stderr
    output = done.stdout
    assert printed_whole_rows(output) == want
    assert all(f"第{part.number}部分 {part.zh}" in output for part in PARTS)
    assert all(d in output for d in districts)
    assert_readable(tmp_path)

"""The policy implementation report: which indicators measure which policy part, how figures over
several district-days are made, the tables, the PNG charts and the PDF, and the command against a
RegulatorService answering from DistrictDay messages built here."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent import futures
from datetime import date, timedelta
from pathlib import Path

import grpc
import pypdf
import pytest
from PIL import Image
from typer.testing import CliRunner

from cli import report_render
from cli.main import app
from cli.report import (
    BACKLOG,
    CHARTS,
    COMPLAINT_RATE,
    CREDIT_LEVELS,
    FIRST_RESPONSE,
    GREEN_SHARE,
    INSURED_SHARE,
    MISSING,
    ORDERS_PLACED,
    PARTS,
    Report,
    district_view,
    trend_view,
)
from jiazheng.regulator.v1 import regulator_pb2 as pb
from jiazheng.regulator.v1 import regulator_pb2_grpc
from services.orders.contract_document import find_cjk_font

START = date(2026, 11, 20)
WEEK = [START + timedelta(days=n) for n in range(7)]
CHAOYANG, HAIDIAN = "110105", "110108"
KEY = "jzk_test-regulator-key"


def day(district: str, on: date, **figures: object) -> pb.DistrictDay:
    return pb.DistrictDay(district_code=district, date=on.isoformat(), **figures)  # type: ignore[arg-type]


def week_of_activity() -> list[pb.DistrictDay]:
    """Two districts over a week, with every indicator moving."""
    return [
        day(
            district,
            on,
            orders_placed=10 + n + d,
            orders_completed=8 + n,
            orders_dispatched=9,
            dispatched_green=8 - d,
            complaints_filed=n % 3,
            median_first_response_seconds=3600 * (n + 1),
            median_resolution_seconds=86400 + 3600 * d,
            mediation_backlog=n + d,
            sla_breaches=n % 2,
            orders_insured=8,
            orders_uninsured=1 + d,
            elderly_care_orders=3,
            age_friendly_orders=1 + d,
            credit_levels=[
                pb.LevelCount(level=lv, workers=w + n) for lv, w in zip("ABCD", (5, 3, 1, 0), strict=True)
            ],
            certified_workers=[pb.SkillLevelCount(skill_level=s, workers=6 - s + d) for s in (5, 4, 3, 2)],
        )
        for n, on in enumerate(WEEK)
        for d, district in enumerate((CHAOYANG, HAIDIAN))
    ]


def figures(days: list[pb.DistrictDay]) -> list[float | None]:
    return [i.of(days) for part in PARTS for i in part.indicators]


def test_the_report_has_the_seven_policy_parts_in_order_with_their_chinese_names() -> None:
    assert [p.number for p in PARTS] == [1, 2, 3, 4, 5, 6, 7]
    assert [p.zh for p in PARTS] == [
        "供需精准对接",
        "从业人员素质",
        "标准化",
        "企业做优做强",
        "创新",
        "从业环境",
        "落实到位",
    ]
    assert all(part.indicators for part in PARTS)


# The rate a day carries is recomputed from its counts, so that it can be over several days too.
DERIVED = {"complaints_per_thousand_orders"}
MEASURED = [
    f.name
    for f in pb.DistrictDay.DESCRIPTOR.fields
    if f.name not in {"district_code", "date", "credit_levels", "certified_workers", *DERIVED}
]


@pytest.mark.parametrize("field", MEASURED)
def test_every_figure_of_a_district_day_moves_some_part_of_the_report(field: str) -> None:
    base = day(CHAOYANG, START, orders_placed=100, orders_dispatched=10, orders_insured=5, orders_uninsured=5)
    moved = pb.DistrictDay()
    moved.CopyFrom(base)
    setattr(moved, field, getattr(base, field) + 3)
    assert figures([moved]) != figures([base])


def test_every_credit_and_skill_level_is_shown() -> None:
    levels = day(
        CHAOYANG,
        START,
        credit_levels=[pb.LevelCount(level=lv, workers=n + 1) for n, lv in enumerate("ABCD")],
        certified_workers=[pb.SkillLevelCount(skill_level=s, workers=10 * s) for s in (5, 4, 3, 2)],
    )
    shown = {(i.en, i.of([levels])) for part in PARTS for i in part.indicators}
    assert {("credit A", 1), ("credit B", 2), ("credit C", 3), ("credit D", 4)} <= shown
    assert {("level 5", 50), ("level 4", 40), ("level 3", 30), ("level 2", 20)} <= shown


def test_the_indicator_groups_each_have_a_chart_of_their_own_parts_indicators() -> None:
    assert [c.name for c in CHARTS] == [
        "orders",
        "green_share",
        "certified_workers",
        "complaint_rate",
        "response_times",
        "credit_levels",
        "insured_share",
        "elderly_care",
        "mediation",
    ]
    for part in PARTS:
        assert all(set(chart.series) <= set(part.indicators) for chart in part.charts)


def test_shares_and_the_complaint_rate_are_recomputed_from_the_summed_counts() -> None:
    days = [
        day(CHAOYANG, START, orders_dispatched=1, dispatched_green=1, orders_placed=100, complaints_filed=2),
        day(HAIDIAN, START, orders_dispatched=3, dispatched_green=0, orders_placed=300, complaints_filed=0),
    ]
    days[0].orders_insured, days[1].orders_uninsured = 1, 3
    assert GREEN_SHARE.of(days) == 0.25  # not the mean of 100 % and 0 %
    assert INSURED_SHARE.of(days) == 0.25
    assert COMPLAINT_RATE.of(days) == 5.0  # 2 complaints per 400 orders
    assert GREEN_SHARE.text(GREEN_SHARE.of(days)) == "25.0%"


def test_a_share_without_anything_to_share_is_missing_not_zero() -> None:
    quiet = [day(CHAOYANG, START)]
    assert GREEN_SHARE.of(quiet) is INSURED_SHARE.of(quiet) is COMPLAINT_RATE.of(quiet) is None
    assert GREEN_SHARE.text(None) == MISSING
    assert ORDERS_PLACED.text(ORDERS_PLACED.of(quiet)) == "0"


def test_a_stock_is_each_districts_last_day_summed() -> None:
    days = [
        day(CHAOYANG, WEEK[1], mediation_backlog=2),
        day(CHAOYANG, WEEK[0], mediation_backlog=5),
        day(HAIDIAN, WEEK[0], mediation_backlog=3),
    ]
    assert BACKLOG.of(days) == 5  # 2 in Chaoyang on the 21st, 3 in Haidian on the 20th
    assert BACKLOG.of([]) is None
    assert (
        CREDIT_LEVELS[0].of([day(CHAOYANG, START, credit_levels=[pb.LevelCount(level="A", workers=4)])]) == 4
    )


def test_by_day_a_stock_is_what_each_district_last_reported_by_then() -> None:
    days = (
        day(CHAOYANG, WEEK[0], mediation_backlog=4),
        day(HAIDIAN, WEEK[1], mediation_backlog=1),
        day(CHAOYANG, WEEK[2], mediation_backlog=2, orders_placed=5),
    )
    shown = trend_view(PARTS[5], Report(START, WEEK[3], (), days), cjk=False)
    assert [row[:2] for row in shown.rows] == [
        ("2026-11-20", "4"),
        ("2026-11-21", "5"),  # Chaoyang's 4 still stands beside Haidian's 1
        ("2026-11-22", "3"),
        ("2026-11-23", "3"),  # nothing changed it
        ("all", "3"),
    ]


def test_a_median_time_is_the_median_of_the_days_that_had_cases_in_hours() -> None:
    days = [
        day(CHAOYANG, on, median_first_response_seconds=3600 * h)
        for on, h in zip(WEEK[:4], (0, 1, 2, 9), strict=True)
    ]
    assert FIRST_RESPONSE.of(days) == 2.0
    assert FIRST_RESPONSE.of(days[:1]) is None


def test_the_district_view_has_a_row_per_district_and_the_whole_range_last() -> None:
    report = Report(START, WEEK[-1], (), tuple(week_of_activity()))
    shown = district_view(PARTS[0], report, cjk=True)
    assert [row[0] for row in shown.rows] == ["110105 朝阳", "110108 海淀", "合计 all"]
    placed = [row[1] for row in shown.rows]
    assert placed == ["91", "98", "189"]  # sum over n of 10 + n, plus one a day in Haidian


def test_the_trend_view_has_every_day_of_the_range_even_a_day_without_indicators() -> None:
    days = tuple(d for d in week_of_activity() if d.date != WEEK[3].isoformat())
    shown = trend_view(PARTS[0], Report(START, WEEK[-1], (), days), cjk=False)
    assert [row[0] for row in shown.rows] == [*(d.isoformat() for d in WEEK), "all"]
    quiet = shown.rows[3]
    assert quiet[1] == "0"
    assert quiet[4] == MISSING  # no dispatch that day: no GREEN share
    assert shown.rows[0][1:] == ("21", "16", "18", "83.3%")
    assert shown.header[1] == "orders placed"


@pytest.fixture(scope="module")
def font() -> Path:
    found = find_cjk_font()
    if found is None:
        pytest.fail(
            "the CJK font wqy-zenhei.ttc is missing: run `make deps` (it unpacks it into .build/fonts)"
        )
    return found


def pdf_pages(path: Path) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(path).pages]


def assert_images(paths: list[Path]) -> None:
    for path in paths:
        with Image.open(path) as image:
            image.verify()
            assert image.format == "PNG"
            assert image.size == (1000, 400)


def assert_a_page_per_part(pages: list[str], titles: list[str]) -> None:
    """Each part's title begins a page of its own, in the parts' order, after the cover."""
    starts = [n for n, text in enumerate(pages) for title in titles if text.startswith(title)]
    assert len(starts) == len(titles) == 7
    assert starts == sorted(starts)
    assert starts[0] == 1


def test_the_charts_and_the_pdf_are_written_with_chinese_labels(tmp_path: Path, font: Path) -> None:
    report = Report(START, WEEK[-1], (), tuple(week_of_activity()))
    written = report_render.write_report(report, tmp_path / "out")
    assert [p.name for p in written] == [*(f"{c.name}.png" for c in CHARTS), "report.pdf"]
    assert_images(written[:-1])
    pages = pdf_pages(written[-1])
    assert_a_page_per_part(pages, [re.sub(r"\s+", " ", p.title(cjk=True)) for p in PARTS])
    assert "北京市家政服务政策落实情况报告" in pages[0]
    assert "district-days reported: 14" in pages[0]
    part_1 = re.sub(r"\s+", " ", pages[1])
    assert "110105 朝阳 91 77 63" in part_1
    assert "合计 all 189 154 126" in part_1


def test_without_a_cjk_font_the_labels_are_english(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_render, "find_cjk_font", lambda: None)
    report = Report(
        START, WEEK[-1], (HAIDIAN,), tuple(d for d in week_of_activity() if d.district_code == HAIDIAN)
    )
    written = report_render.write_report(report, tmp_path)
    assert_images(written[:-1])
    pages = pdf_pages(written[-1])
    assert_a_page_per_part(pages, [p.title(cjk=False) for p in PARTS])
    assert "No CJK font was found" in pages[0]
    assert not re.search(r"[\u4e00-\u9fff]", "".join(pages))


class Regulator(regulator_pb2_grpc.RegulatorServiceServicer):
    """ListIndicators answering from the days given, as the regulator service would; what it was
    asked and with which key, kept."""

    def __init__(self, days: list[pb.DistrictDay]) -> None:
        self.days = days
        self.requests: list[pb.ListIndicatorsRequest] = []
        self.keys: list[str] = []

    def ListIndicators(
        self, request: pb.ListIndicatorsRequest, context: grpc.ServicerContext
    ) -> pb.ListIndicatorsResponse:
        self.requests.append(request)
        self.keys.append(dict(context.invocation_metadata())["authorization"])  # type: ignore[arg-type]
        asked = set(request.district_codes)
        return pb.ListIndicatorsResponse(days=[d for d in self.days if not asked or d.district_code in asked])

    def Subscribe(
        self, request: pb.SubscribeRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.SubscribeResponse]:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "the report does not subscribe")


@pytest.fixture
def regulator() -> Iterator[tuple[Regulator, str]]:
    servicer = Regulator(week_of_activity())
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    regulator_pb2_grpc.add_RegulatorServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(grace=None)


def run_report(address: str, *args: str) -> tuple[int, str]:
    env = {"JZ_API_KEY": KEY, "JZ_REGULATOR_ADDRESS": address}
    result = CliRunner().invoke(app, ["report", *args], env=env)
    return result.exit_code, result.output


def test_the_command_asks_for_the_range_and_districts_and_writes_the_report(
    regulator: tuple[Regulator, str], tmp_path: Path, font: Path
) -> None:
    servicer, address = regulator
    args = ["--from", "2026-11-20", "--to", "2026-11-26", "--district", HAIDIAN, "--out", str(tmp_path)]
    code, output = run_report(address, *args)
    assert code == 0, output
    assert servicer.requests == [
        pb.ListIndicatorsRequest(start_date="2026-11-20", end_date="2026-11-26", district_codes=[HAIDIAN])
    ]
    assert servicer.keys == [f"Bearer {KEY}"]
    assert re.search(r"110108 海淀 +│ +98 │ +77 │ +63 │", output)
    assert "110105" not in output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*(f"{c.name}.png" for c in CHARTS), "report.pdf"]
    )


def test_the_command_fails_when_there_are_no_indicators_or_the_range_is_backwards(
    regulator: tuple[Regulator, str], tmp_path: Path
) -> None:
    _, address = regulator
    code, output = run_report(address, "--from", "2025-01-01", "--to", "2025-01-07", "--district", "110119")
    assert (code, "no indicators from 2025-01-01 to 2025-01-07 for 110119") == (1, output.strip())
    code, output = run_report(address, "--from", "2026-11-26", "--to", "2026-11-20")
    assert (code, output.strip()) == (1, "--to is before --from")
    code, output = run_report(address, "--from", "26-11-20", "--to", "2026-11-26")
    assert code == 2
    assert "is not a date YYYY-MM-DD" in output

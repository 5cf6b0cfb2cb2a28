"""``jiazheng report``: the policy implementation report (政策落实情况报告) regulators read.

For each of the seven parts of Beijing's 2024 measures (DOMAIN §1) it shows the indicators that
measure it (DOMAIN §11, as ``ListIndicators`` answers them per district and Beijing day) in two
views: per district over the range, and per day over the districts asked for. The mapping of
indicators to parts is ``PARTS``; docs/regulators.md explains it.

Figures over several district-days: counts are summed; shares and the complaint rate are
recomputed from the summed counts; a stock (the mediation backlog, workers per credit or skill
level) is each district's figure on its last day reported, summed over the districts (by day: the
figures that held that day); a median
time is the median of the district-days' medians (the cases themselves are not in the
indicators), over those that had a case.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import cast

import typer
from rich.table import Column, Table

from cli.rpc import Target, address_option, console, fail, invoke
from jiazheng.regulator.v1 import regulator_pb2 as pb
from jiazheng.regulator.v1 import regulator_pb2_grpc
from libs.common.districts import BEIJING_DISTRICTS

Days = Sequence[pb.DistrictDay]
Figure = Callable[[Days], float | None]
MISSING = "–"  # no figure: nothing to compute it from
TERMINAL_COLUMNS = 4


@dataclass(frozen=True)
class Indicator:
    """One figure a regulator reads, computed from any set of district-days."""

    zh: str
    en: str
    of: Figure
    percent: bool = False
    digits: int = 0
    stock: bool = False  # what holds at the end of a day, not what happened during it

    def label(self, cjk: bool) -> str:
        return f"{self.zh}\n{self.en}" if cjk else self.en

    def text(self, value: float | None) -> str:
        if value is None:
            return MISSING
        return f"{value:.1%}" if self.percent else f"{value:,.{self.digits}f}"

    def on(self, report: Report, day: date) -> float | None:
        """The figure of one day over the districts: a stock as each district last reported it by
        then (a district day is reported only when something changed it)."""
        return self.of(report.until(day) if self.stock else report.on(day))


@dataclass(frozen=True)
class Chart:
    """One PNG: some indicators per day over the range, as lines, side-by-side bars or stacked bars."""

    name: str
    zh: str
    en: str
    series: tuple[Indicator, ...]
    kind: str = "line"

    def title(self, cjk: bool) -> str:
        return f"{self.zh} {self.en}" if cjk else self.en


@dataclass(frozen=True)
class Part:
    """A part of the policy (DOMAIN §1), the indicators that measure it and their charts."""

    number: int
    zh: str
    en: str
    indicators: tuple[Indicator, ...]
    charts: tuple[Chart, ...] = ()

    def title(self, cjk: bool) -> str:
        english = f"Part {self.number}: {self.en}"
        return f"第{self.number}部分 {self.zh}  {english}" if cjk else english


def total(field: str) -> Figure:
    return lambda days: float(sum(getattr(d, field) for d in days))


def share(part: str, *whole: str) -> Figure:
    """``part`` over the sum of the ``whole`` fields, over the summed days; None when that is 0."""

    def figure(days: Days) -> float | None:
        denominator = sum(getattr(d, f) for d in days for f in whole)
        return sum(getattr(d, part) for d in days) / denominator if denominator else None

    return figure


def per_thousand_orders(days: Days) -> float | None:
    placed = sum(d.orders_placed for d in days)
    return 1000 * sum(d.complaints_filed for d in days) / placed if placed else None


def median_hours(field: str) -> Figure:
    def figure(days: Days) -> float | None:
        medians = [getattr(d, field) for d in days if getattr(d, field) > 0]
        return statistics.median(medians) / 3600 if medians else None

    return figure


def at_end(count: Callable[[pb.DistrictDay], int]) -> Figure:
    """A stock: each district's count on its last day among ``days``, summed; None without days."""

    def figure(days: Days) -> float | None:
        last: dict[str, pb.DistrictDay] = {}
        for day in sorted(days, key=lambda d: d.date):
            last[day.district_code] = day
        return float(sum(count(d) for d in last.values())) if last else None

    return figure


def credit_level(level: str) -> Callable[[pb.DistrictDay], int]:
    return lambda day: sum(c.workers for c in day.credit_levels if c.level == level)


def skill_level(level: int) -> Callable[[pb.DistrictDay], int]:
    return lambda day: sum(c.workers for c in day.certified_workers if c.skill_level == level)


def distinct(field: str) -> Figure:
    return lambda days: float(len({getattr(d, field) for d in days}))


ORDERS_PLACED = Indicator("下单量", "orders placed", total("orders_placed"))
ORDERS_COMPLETED = Indicator("完成量", "orders completed", total("orders_completed"))
ORDERS_DISPATCHED = Indicator("派单量", "orders dispatched", total("orders_dispatched"))
GREEN_SHARE = Indicator(
    "绿码派单占比", "GREEN share of dispatch", share("dispatched_green", "orders_dispatched"), percent=True
)
SKILL_LEVELS = tuple(
    Indicator(f"{zh}持证", f"level {n}", at_end(skill_level(n)), stock=True)
    for n, zh in ((5, "五级"), (4, "四级"), (3, "三级"), (2, "二级"))
)
COMPLAINTS = Indicator("投诉量", "complaints", total("complaints_filed"))
COMPLAINT_RATE = Indicator("千单投诉率", "per 1,000 orders", per_thousand_orders, digits=1)
FIRST_RESPONSE = Indicator(
    "首次响应(时)",
    "median 1st response h",
    median_hours("median_first_response_seconds"),
    digits=1,
)
RESOLUTION = Indicator("办结(时)", "median resolution h", median_hours("median_resolution_seconds"), digits=1)
CREDIT_LEVELS = tuple(
    Indicator(f"信用{level}级", f"credit {level}", at_end(credit_level(level)), stock=True)
    for level in "ABCD"
)
INSURED = Indicator("有保险派单", "dispatched insured", total("orders_insured"))
UNINSURED = Indicator("无保险派单", "dispatched uninsured", total("orders_uninsured"))
INSURED_SHARE = Indicator(
    "投保占比", "insured share", share("orders_insured", "orders_insured", "orders_uninsured"), percent=True
)
ELDERLY_CARE = Indicator("养老+家政订单", "elderly-care orders", total("elderly_care_orders"))
AGE_FRIENDLY = Indicator("适老化改造订单", "age-friendly orders", total("age_friendly_orders"))
BACKLOG = Indicator(
    "调解积案(期末)", "mediation backlog (end)", at_end(lambda d: d.mediation_backlog), stock=True
)
BREACHES = Indicator("超期未办", "SLA breaches", total("sla_breaches"))
DISTRICTS_REPORTING = Indicator("报送区数", "districts reporting", distinct("district_code"))
DAYS_REPORTED = Indicator("报送天数", "days reported", distinct("date"))

PARTS = (
    Part(
        1,
        "供需精准对接",
        "matching supply and demand",
        (ORDERS_PLACED, ORDERS_COMPLETED, ORDERS_DISPATCHED, GREEN_SHARE),
        (
            Chart("orders", "订单", "orders placed and completed", (ORDERS_PLACED, ORDERS_COMPLETED)),
            Chart("green_share", "绿码派单占比", "GREEN share of dispatch", (GREEN_SHARE,)),
        ),
    ),
    Part(
        2,
        "从业人员素质",
        "worker skills and certification",
        SKILL_LEVELS,
        (
            Chart(
                "certified_workers", "持证人员", "certified workers by skill level", SKILL_LEVELS, "stacked"
            ),
        ),
    ),
    Part(
        3,
        "标准化",
        "standards, credit and consumer protection",
        (COMPLAINTS, COMPLAINT_RATE, FIRST_RESPONSE, RESOLUTION, *CREDIT_LEVELS),
        (
            Chart("complaint_rate", "千单投诉率", "complaints per 1,000 orders", (COMPLAINT_RATE,)),
            Chart(
                "response_times",
                "投诉处理时长",
                "median response and resolution",
                (FIRST_RESPONSE, RESOLUTION),
            ),
            Chart("credit_levels", "信用等级分布", "credit level distribution", CREDIT_LEVELS, "stacked"),
        ),
    ),
    Part(
        4,
        "企业做优做强",
        "stronger companies: insurance",
        (INSURED, UNINSURED, INSURED_SHARE),
        (Chart("insured_share", "投保占比", "insured share of dispatch", (INSURED_SHARE,)),),
    ),
    Part(
        5,
        "创新",
        "innovation: elderly care and age-friendly homes",
        (ELDERLY_CARE, AGE_FRIENDLY),
        (
            Chart(
                "elderly_care",
                "养老+家政与适老化改造",
                "elderly-care and age-friendly orders",
                (ELDERLY_CARE, AGE_FRIENDLY),
                "bars",
            ),
        ),
    ),
    Part(
        6,
        "从业环境",
        "working environment: mediation",
        (BACKLOG, BREACHES),
        (Chart("mediation", "调解", "mediation backlog and SLA breaches", (BACKLOG, BREACHES), "bars"),),
    ),
    Part(7, "落实到位", "tracking implementation", (DISTRICTS_REPORTING, DAYS_REPORTED)),
)
CHARTS = tuple(chart for part in PARTS for chart in part.charts)


@dataclass(frozen=True)
class Report:
    """The indicators of a date range (Beijing days) for the districts asked for (none: all)."""

    start: date
    end: date
    districts: tuple[str, ...]
    days: tuple[pb.DistrictDay, ...]

    def dates(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def on(self, day: date) -> list[pb.DistrictDay]:
        return [d for d in self.days if d.date == day.isoformat()]

    def until(self, day: date) -> list[pb.DistrictDay]:
        return [d for d in self.days if d.date <= day.isoformat()]

    def of(self, district: str) -> list[pb.DistrictDay]:
        return [d for d in self.days if d.district_code == district]

    def district_codes(self) -> list[str]:
        return sorted({d.district_code for d in self.days})


@dataclass(frozen=True)
class View:
    """One part's indicators as a table: a row per district or per day, and the whole range last."""

    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def district_name(code: str, cjk: bool) -> str:
    name = BEIJING_DISTRICTS.get(code)
    return f"{code} {name}" if cjk and name else code


def view(title: str, part: Part, rows: Sequence[tuple[str, ...]], report: Report, cjk: bool) -> View:
    """The part's indicators as columns, the rows given, and the whole range's figures last."""
    whole = ("合计 all" if cjk else "all", *(i.text(i.of(report.days)) for i in part.indicators))
    header = ("", *(i.label(cjk) for i in part.indicators))
    return View(title, header, (*rows, whole))


def district_view(part: Part, report: Report, cjk: bool) -> View:
    """Each district's figures over the whole range."""
    rows = [
        (district_name(code, cjk), *(i.text(i.of(report.of(code))) for i in part.indicators))
        for code in report.district_codes()
    ]
    return view("分区 by district" if cjk else "by district", part, rows, report, cjk)


def trend_view(part: Part, report: Report, cjk: bool) -> View:
    """Each day's figures over the districts: every day of the range, reported or not."""
    rows = [(d.isoformat(), *(i.text(i.on(report, d)) for i in part.indicators)) for d in report.dates()]
    return view("逐日 by day" if cjk else "by day", part, rows, report, cjk)


def rich_tables(part: Part, shown: View) -> list[Table]:
    """The view as tables of at most ``TERMINAL_COLUMNS`` indicators each (an 80-column terminal
    shows them whole), each headed by the district or day; the whole range's row last, in bold."""
    tables = []
    for first in range(1, len(shown.header), TERMINAL_COLUMNS):
        columns = slice(first, first + TERMINAL_COLUMNS)
        title = f"{part.title(cjk=True)}: {shown.title}" if first == 1 else None
        figures = (Column(h, justify="right") for h in shown.header[columns])
        table = Table(Column(no_wrap=True), *figures, title=title)
        for row in shown.rows:
            table.add_row(row[0], *row[columns], style="bold" if row is shown.rows[-1] else None)
        tables.append(table)
    return tables


def print_tables(report: Report) -> None:
    for part in PARTS:
        for shown in (district_view(part, report, cjk=True), trend_view(part, report, cjk=True)):
            for table in rich_tables(part, shown):
                console.print(table)


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date YYYY-MM-DD") from None


def fetch(target: Target, start: date, end: date, districts: Sequence[str]) -> Report:
    """The indicators ``ListIndicators`` answers for the range."""
    request = pb.ListIndicatorsRequest(
        start_date=start.isoformat(), end_date=end.isoformat(), district_codes=districts
    )
    reply = cast(
        pb.ListIndicatorsResponse,
        invoke(target, pb.DESCRIPTOR, regulator_pb2_grpc, "ListIndicators", request),
    )
    return Report(start, end, tuple(districts), tuple(reply.days))


FROM = typer.Option(..., "--from", parser=parse_day, help="first Beijing day, YYYY-MM-DD")
TO = typer.Option(..., "--to", parser=parse_day, help="last Beijing day, YYYY-MM-DD")
DISTRICTS = typer.Option([], "--district", help="a GB/T 2260 code, e.g. 110105; repeatable; default: all")
OUT = typer.Option(None, "--out", help="where the PNGs and the PDF go; default: ./report-FROM-TO")
PRINCIPAL = typer.Option(
    "regulator", "--as", help="the local stack's principal whose key to use; JZ_API_KEY overrides"
)
ADDRESS = address_option("regulator")


def report(
    start: date = FROM,
    end: date = TO,
    districts: list[str] = DISTRICTS,
    out: Path | None = OUT,
    principal: str = PRINCIPAL,
    address: str | None = ADDRESS,
) -> None:
    """The policy implementation report (政策落实情况): per policy part, its indicators by district and
    by day, a PNG chart per indicator group and one PDF with all of them (regulators, operators)."""
    if end < start:
        fail("--to is before --from")
    found = fetch(Target("regulator", address, principal), start, end, districts)
    if not found.days:
        fail(f"no indicators from {start} to {end}" + (f" for {', '.join(districts)}" if districts else ""))
    print_tables(found)
    # matplotlib and the PDF are loaded only when a report is written: every other command starts faster.
    from cli.report_render import write_report

    written = write_report(found, out or Path(f"report-{start}-{end}"))
    console.print(f"charts and report: {', '.join(str(p) for p in written)}", soft_wrap=True, highlight=False)

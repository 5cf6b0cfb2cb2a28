"""The policy implementation report as files: a PNG chart per indicator group (matplotlib, Agg) and
one landscape A4 PDF (ReportLab) with a cover page, then each policy part from a new page: its
district and trend tables and its charts.

Chinese labels need a CJK font: WenQuanYi Zen Hei, which ``make deps`` unpacks into .build/fonts
(the contract PDFs use it too). Without one the charts and the PDF are labelled in English only.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import escape

import matplotlib

matplotlib.use("Agg")  # files only: no display, whatever MPLBACKEND says

from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.typing import RcKeyType
from reportlab.lib import colors  # type: ignore[import-untyped]
from reportlab.lib.pagesizes import A4, landscape  # type: ignore[import-untyped]
from reportlab.lib.styles import ParagraphStyle  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.pdfbase import pdfmetrics  # type: ignore[import-untyped]
from reportlab.pdfbase.ttfonts import TTFont  # type: ignore[import-untyped]
from reportlab.platypus import (  # type: ignore[import-untyped]
    Flowable,
    Image,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from cli.report import CHARTS, PARTS, Chart, Indicator, Part, Report, View, district_view, trend_view
from libs.common.beijing import BEIJING
from services.orders.contract_document import find_cjk_font

TITLE_ZH, TITLE_EN = (
    "北京市家政服务政策落实情况报告",
    "Household services policy implementation report, Beijing",
)
PDF_NAME = "report.pdf"
CHART_SIZE = (10.0, 4.0)  # inches; the PDF shows charts 240 mm wide
PAGE = landscape(A4)
MARGIN = 12 * mm


@functools.cache
def matplotlib_family(font: Path) -> str:
    """Adds the CJK collection to matplotlib's fonts, once per process; the family name to ask for."""
    font_manager.fontManager.addfont(str(font))
    return font_manager.FontProperties(fname=str(font)).get_name()


@functools.cache
def reportlab_font(font: Path) -> str:
    """Registers the collection's first face with ReportLab, once per process, under the file's stem."""
    pdfmetrics.registerFont(TTFont(font.stem, str(font), subfontIndex=0))
    return font.stem


def write_report(report: Report, out: Path) -> list[Path]:
    """The PNG of every chart and the PDF, in ``out`` (made if missing); their paths, the PDF last."""
    out.mkdir(parents=True, exist_ok=True)
    font = find_cjk_font()
    charts = {chart.name: write_chart(chart, report, out / f"{chart.name}.png", font) for chart in CHARTS}
    pdf = out / PDF_NAME
    write_pdf(report, charts, pdf, font)
    return [*charts.values(), pdf]


def write_chart(chart: Chart, report: Report, path: Path, font: Path | None) -> Path:
    """The chart's indicators per day of the range, over the districts of the report."""
    # Zen Hei has Latin letters too, and one face, medium: asking for that weight finds it as is.
    family, weight = (matplotlib_family(font), "medium") if font else ("DejaVu Sans", "normal")
    style: dict[RcKeyType, object] = {"font.family": family, "axes.unicode_minus": False}
    style |= {"font.weight": weight, "axes.titleweight": weight, "axes.labelweight": weight}
    with matplotlib.rc_context(style):
        figure = Figure(figsize=CHART_SIZE, dpi=100, layout="constrained")
        axes = figure.subplots()
        plot(chart, axes, report, cjk=font is not None)
        axes.set_title(chart.title(cjk=font is not None))
        axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=4, fontsize="small")
        figure.savefig(path)
    return path


def daily(indicator: Indicator, report: Report) -> list[float]:
    """The indicator on each day of the range (NaN where there is no figure), shares in percent."""
    values = [indicator.on(report, day) for day in report.dates()]
    scale = 100 if indicator.percent else 1
    return [math.nan if v is None else v * scale for v in values]


def plot(chart: Chart, axes: Axes, report: Report, cjk: bool) -> None:
    """Lines, bars side by side, or bars stacked (a distribution), one series per indicator."""
    dates = report.dates()
    positions = [float(n) for n in range(len(dates))]
    bottom = [0.0] * len(dates)
    width = 0.8 / len(chart.series)
    for n, indicator in enumerate(chart.series):
        values, label = daily(indicator, report), indicator.label(cjk).replace("\n", " ")
        if chart.kind == "line":
            axes.plot(positions, values, marker="o", label=label)
        elif chart.kind == "stacked":
            counts = [0.0 if math.isnan(v) else v for v in values]
            axes.bar(positions, counts, 0.8, bottom=bottom, label=label)
            bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
        else:
            offset = (n - (len(chart.series) - 1) / 2) * width
            axes.bar([p + offset for p in positions], values, width, label=label)
    step = max(1, len(dates) // 14)
    axes.set_xticks(positions[::step], [d.strftime("%m-%d") for d in dates[::step]])
    if all(i.percent for i in chart.series):
        axes.set_ylabel("%")


@dataclass(frozen=True)
class Styles:
    """The PDF's paragraph styles, in the CJK font or in Helvetica."""

    font: str
    title: ParagraphStyle
    heading: ParagraphStyle
    body: ParagraphStyle
    cell: ParagraphStyle

    @classmethod
    def using(cls, font: str) -> Styles:
        return cls(
            font,
            ParagraphStyle("title", fontName=font, fontSize=20, leading=28, spaceAfter=8 * mm),
            ParagraphStyle("heading", fontName=font, fontSize=14, leading=20, spaceAfter=3 * mm),
            ParagraphStyle("body", fontName=font, fontSize=10, leading=15, wordWrap="CJK"),
            ParagraphStyle("cell", fontName=font, fontSize=7, leading=9, wordWrap="CJK"),
        )


def write_pdf(report: Report, charts: Mapping[str, Path], path: Path, font: Path | None) -> None:
    """The cover, then a part per page: its title, district view, trend view and charts."""
    styles = Styles.using(reportlab_font(font) if font else "Helvetica")
    cjk = font is not None
    story = cover(report, styles, cjk)
    for part in PARTS:
        story += [PageBreak(), *part_story(part, report, charts, styles, cjk)]
    title = f"{TITLE_ZH} {report.start}–{report.end}" if cjk else f"{TITLE_EN} {report.start}–{report.end}"
    margins = {"leftMargin": MARGIN, "rightMargin": MARGIN, "topMargin": MARGIN, "bottomMargin": MARGIN}
    SimpleDocTemplate(str(path), pagesize=PAGE, title=title, **margins).build(story)


def cover(report: Report, styles: Styles, cjk: bool) -> list[Flowable]:
    districts = ", ".join(report.districts) or ("全部 all" if cjk else "all")
    made = datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M (UTC+8)")
    lines = [
        f"{report.start} – {report.end} (Beijing days)",
        f"districts: {districts}; district-days reported: {len(report.days)}",
        f"made {made} from RegulatorService.ListIndicators",
        "Over several district-days: counts are summed; shares and rates are recomputed from the sums; "
        "backlogs and workers per level are each district's last day reported, summed; median times are "
        "the median of the district-days' medians.",
    ]
    if not cjk:
        lines.append("No CJK font was found (run make deps): labels are in English only.")
    title = f"{TITLE_ZH}<br/>{TITLE_EN}" if cjk else TITLE_EN
    return [Paragraph(title, styles.title), *(Paragraph(escape(line), styles.body) for line in lines)]


def part_story(
    part: Part, report: Report, charts: Mapping[str, Path], styles: Styles, cjk: bool
) -> list[Flowable]:
    story: list[Flowable] = [Paragraph(escape(part.title(cjk)), styles.heading)]
    for shown in (district_view(part, report, cjk), trend_view(part, report, cjk)):
        story += [Paragraph(escape(shown.title), styles.body), pdf_table(shown, styles), Spacer(1, 4 * mm)]
    return [*story, *chart_grid([charts[chart.name] for chart in part.charts])]


def chart_grid(pngs: Sequence[Path]) -> list[Flowable]:
    """The charts two to a row, each half the page wide."""
    width = (PAGE[0] - 2 * MARGIN) / 2 - 2 * mm
    images = [Image(str(png), width=width, height=width * CHART_SIZE[1] / CHART_SIZE[0]) for png in pngs]
    rows = [images[n : n + 2] for n in range(0, len(images), 2)]
    return [Table(rows, hAlign="LEFT")] if rows else []


def pdf_table(shown: View, styles: Styles) -> Table:
    """A view's rows with its header repeated on every page the table runs over; the total in bold."""
    header = [Paragraph(escape(text).replace("\n", "<br/>"), styles.cell) for text in shown.header]
    first = 34 * mm
    rest = (PAGE[0] - 2 * MARGIN - first) / max(1, len(shown.header) - 1)
    table = Table([header, *shown.rows], colWidths=[first, *[rest] * (len(shown.header) - 1)], repeatRows=1)
    table.setStyle(TableStyle(table_style(styles.font, len(shown.rows))))
    return table


def table_style(font: str, rows: int) -> Sequence[tuple[object, ...]]:
    return [
        ("FONTNAME", (0, 0), (-1, -1), font),
        ("FONTSIZE", (0, 1), (-1, -1), 7),
        ("ALIGN", (1, 1), (-1, -1), "RIGHT"),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f0f0f0")),
        ("BACKGROUND", (0, rows), (-1, rows), colors.HexColor("#e8e8e8")),
    ]

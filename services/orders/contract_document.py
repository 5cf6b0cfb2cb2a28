"""The contract as documents people read: an HTML page and an A4 PDF with the same content.

Both are laid out after Beijing's model text (北京市家政服务合同示范文本) and end with the content
hash, so a printed contract can be checked against the one stored. The PDF sets its Chinese text
in WenQuanYi Zen Hei (Debian's fonts-wqy-zenhei, unpacked into .build/fonts by ``make deps``).
"""

from __future__ import annotations

import dataclasses
import functools
import io
from dataclasses import dataclass
from datetime import datetime
from html import escape
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

from reportlab.lib import colors  # type: ignore[import-untyped]
from reportlab.lib.enums import TA_CENTER  # type: ignore[import-untyped]
from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
from reportlab.lib.styles import ParagraphStyle  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.pdfbase import pdfmetrics  # type: ignore[import-untyped]
from reportlab.pdfbase.ttfonts import TTFont  # type: ignore[import-untyped]
from reportlab.platypus import (  # type: ignore[import-untyped]
    Flowable,
    Paragraph,
    SimpleDocTemplate,
    Table,
    TableStyle,
)

from libs.common.beijing import BEIJING
from libs.common.districts import BEIJING_DISTRICTS
from services.orders.domain.contract import (
    DISPUTE_ROUTE,
    REPLACEMENT_CLAUSE,
    Contract,
    PaymentCycle,
    breach_clauses,
    cancellation_clauses,
    format_yuan,
)
from services.orders.domain.vocabulary import ServiceType

TITLE = "北京市家政服务合同（示范文本）"
_NUMERALS = "一二三四五六七八九十"
_REPO_ROOT = Path(__file__).resolve().parents[2]
FONT_CANDIDATES = (
    _REPO_ROOT / ".build/fonts/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
)

SERVICE_TYPE_NAMES = {
    ServiceType.CLEANING: "保洁/钟点工",
    ServiceType.LIVE_IN_HOUSEKEEPER: "住家保姆",
    ServiceType.MATERNITY: "月嫂",
    ServiceType.INFANT_CARE: "育儿嫂",
    ServiceType.ELDERLY_CARE: "养老护理",
    ServiceType.PATIENT_CARE: "病患护理",
    ServiceType.APPLIANCE_CLEANING: "家电清洗",
    ServiceType.ORGANISING: "整理收纳",
    ServiceType.AGE_FRIENDLY_ADAPTATION: "适老化改造",
}
PAYMENT_CYCLE_NAMES = {
    PaymentCycle.PER_VISIT: "按次",
    PaymentCycle.WEEKLY: "按周",
    PaymentCycle.MONTHLY: "按月",
}

_STYLESHEET = """
body { font-family: "WenQuanYi Zen Hei", "Noto Sans CJK SC", sans-serif; max-width: 46em;
       margin: 2em auto; padding: 0 1em; line-height: 1.6; color: #222; }
h1 { text-align: center; font-size: 1.5em; }
h2 { font-size: 1.1em; border-bottom: 1px solid #999; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.5em; text-align: left; vertical-align: top; }
th { width: 30%; background: #f4f4f4; font-weight: normal; }
footer { margin-top: 2em; font-size: 0.85em; color: #555; word-break: break-all; }
"""


@dataclass(frozen=True)
class _Section:
    """A part of the contract: labelled values, then numbered clauses."""

    title: str
    rows: tuple[tuple[str, str], ...] = ()
    clauses: tuple[str, ...] = ()


def find_cjk_font() -> Path | None:
    """The WenQuanYi Zen Hei collection ``make deps`` unpacks, else the system's, else None."""
    return next((path for path in FONT_CANDIDATES if path.is_file()), None)


def _beijing(at: datetime) -> str:
    return f"{at.astimezone(BEIJING):%Y-%m-%d %H:%M}（北京时间）"


def _header(contract: Contract) -> _Section:
    replaces = contract.replaces_contract_id
    return _Section(
        "合同信息",
        (
            ("合同编号", str(contract.contract_id)),
            ("订单编号", str(contract.order_id)),
            ("下单平台", contract.parties.platform_id),
            ("签订时间", _beijing(contract.created_at)),
            ("更换前合同", str(replaces) if replaces else "无"),
        ),
    )


def _parties(contract: Contract) -> _Section:
    parties = contract.parties
    return _Section(
        "合同当事人",
        (
            ("甲方（消费者）", parties.consumer_name),
            ("甲方联系电话", parties.consumer_phone),
            ("服务地址", parties.address),
            ("甲方编号", parties.consumer_ref),
            ("乙方（家政服务机构）", parties.company_id),
            ("服务人员编号", parties.worker_id),
            ("服务人员服务卡号", parties.card_id),
        ),
    )


def _service(contract: Contract) -> _Section:
    service = contract.service
    district = BEIJING_DISTRICTS.get(service.district_code)
    return _Section(
        "服务内容",
        (
            ("服务类型", SERVICE_TYPE_NAMES[service.service_type]),
            ("服务区域", f"北京市{district}区" if district else service.district_code),
            ("服务开始", _beijing(service.start)),
            ("服务结束", _beijing(service.end)),
            ("服务时长", f"{service.hours} 小时"),
            ("特殊需求", "、".join(service.special_needs) or "无"),
        ),
    )


def _fees(contract: Contract) -> _Section:
    terms = contract.terms
    return _Section(
        "服务费用",
        (
            ("服务人员劳务报酬", format_yuan(terms.wage_fen)),
            ("乙方管理费", format_yuan(terms.management_fee_fen)),
            ("服务费用合计", format_yuan(terms.wage_fen + terms.management_fee_fen)),
            ("押金", format_yuan(terms.deposit_fen)),
            ("结算周期", PAYMENT_CYCLE_NAMES[terms.payment_cycle]),
        ),
    )


def _trial(contract: Contract) -> _Section:
    days = contract.terms.trial_days
    trial = f"{days} 天，至 {_beijing(contract.trial_ends_at)} 止" if days else "无试用期"
    return _Section("试用期与更换服务人员", (("试用期", trial),), (REPLACEMENT_CLAUSE,))


def _sections(contract: Contract) -> tuple[_Section, ...]:
    """The header, then the numbered parts (一、二、…): a contract without a cancellation clause
    (drafted before there was one) numbers its parts as it always did."""
    parts = (
        _parties(contract),
        _service(contract),
        _fees(contract),
        _trial(contract),
        *_cancellation(contract),
        _Section("违约责任", clauses=breach_clauses(contract.terms)),
        _Section("争议解决", clauses=DISPUTE_ROUTE),
    )
    numbered = (
        dataclasses.replace(part, title=f"{_NUMERALS[n]}、{part.title}") for n, part in enumerate(parts)
    )
    return (_header(contract), *numbered)


def _cancellation(contract: Contract) -> tuple[_Section, ...]:
    """取消服务, in a contract that has the clause (those drafted before it existed do not)."""
    clauses = cancellation_clauses(contract.terms, contract.service.price_fen)
    return (_Section("取消服务", clauses=clauses),) if clauses else ()


def _foot(contract: Contract) -> str:
    return f"合同内容摘要（SHA-256）：{contract.content_hash()}"


def _html_section(section: _Section) -> str:
    rows = "".join(
        f"<tr><th>{escape(label)}</th><td>{escape(value)}</td></tr>" for label, value in section.rows
    )
    clauses = "".join(f"<li>{escape(clause)}</li>" for clause in section.clauses)
    return (
        f"<section><h2>{escape(section.title)}</h2>"
        + (f"<table>{rows}</table>" if rows else "")
        + (f"<ol>{clauses}</ol>" if clauses else "")
        + "</section>\n"
    )


def render_html(contract: Contract) -> str:
    """The contract as a self-contained HTML5 page (no external resources); every value escaped."""
    body = "".join(_html_section(section) for section in _sections(contract))
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(TITLE)}</title>\n<style>{_STYLESHEET}</style>\n</head>\n<body>\n"
        f"<h1>{escape(TITLE)}</h1>\n{body}<footer>{escape(_foot(contract))}</footer>\n</body>\n</html>\n"
    )


@functools.cache
def _font_name(font_path: Path) -> str:
    """Registers the collection's first face with ReportLab, once per process, under the file's stem."""
    pdfmetrics.registerFont(TTFont(font_path.stem, str(font_path), subfontIndex=0))
    return font_path.stem


@dataclass(frozen=True)
class _PdfStyles:
    title: ParagraphStyle
    heading: ParagraphStyle
    body: ParagraphStyle
    foot: ParagraphStyle


def _pdf_styles(font: str) -> _PdfStyles:
    body = ParagraphStyle("body", fontName=font, fontSize=10, leading=15, wordWrap="CJK")
    return _PdfStyles(
        title=ParagraphStyle("title", body, fontSize=16, leading=24, alignment=TA_CENTER, spaceAfter=6 * mm),
        heading=ParagraphStyle(
            "heading", body, fontSize=12, leading=18, spaceBefore=4 * mm, spaceAfter=2 * mm
        ),
        body=body,
        foot=ParagraphStyle("foot", body, fontSize=8, leading=12, spaceBefore=8 * mm, textColor=colors.grey),
    )


def _pdf_table(rows: tuple[tuple[str, str], ...], style: ParagraphStyle) -> Table:
    cells = [
        [Paragraph(xml_escape(label), style), Paragraph(xml_escape(value), style)] for label, value in rows
    ]
    table = Table(cells, colWidths=(45 * mm, None))
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.5, colors.lightgrey),
                ("BACKGROUND", (0, 0), (0, -1), colors.whitesmoke),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def _pdf_section(section: _Section, styles: _PdfStyles) -> list[Flowable]:
    flowables: list[Flowable] = [Paragraph(xml_escape(section.title), styles.heading)]
    if section.rows:
        flowables.append(_pdf_table(section.rows, styles.body))
    numbered = (f"{n}. {clause}" for n, clause in enumerate(section.clauses, start=1))
    flowables.extend(Paragraph(xml_escape(clause), styles.body) for clause in numbered)
    return flowables


def render_pdf(contract: Contract, font_path: Path) -> bytes:
    """The contract as an A4 PDF with the CJK font at ``font_path`` embedded; the same contract,
    the same bytes (ReportLab's invariant mode fixes the dates and the document id)."""
    styles = _pdf_styles(_font_name(font_path))
    story: list[Flowable] = [Paragraph(xml_escape(TITLE), styles.title)]
    for section in _sections(contract):
        story.extend(_pdf_section(section, styles))
    story.append(Paragraph(xml_escape(_foot(contract)), styles.foot))
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer, pagesize=A4, invariant=1, title=TITLE, leftMargin=20 * mm, rightMargin=20 * mm
    )
    document.build(story)
    return buffer.getvalue()

"""The contract as an HTML page and a PDF: content, escaping, the embedded CJK font, stable bytes."""

from __future__ import annotations

import io
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pypdf
import pytest

from services.orders.contract_document import find_cjk_font, render_html, render_pdf
from services.orders.tests.test_contract import make_contract, make_parties, make_service, make_terms

TITLE = "北京市家政服务合同（示范文本）"
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def font() -> Path:
    found = find_cjk_font()
    if found is None:
        pytest.fail(
            "the CJK font wqy-zenhei.ttc is missing: run `make deps` (it unpacks it into .build/fonts)"
        )
    return found


class _Text(HTMLParser):
    """A page's text as a browser shows it: tags gone, entities decoded."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)


def _text_of(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return "".join(parser.chunks)


def _pdf_text(pdf: bytes) -> str:
    return "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)


def test_html_is_a_self_contained_chinese_page_with_the_title_and_hash() -> None:
    contract = make_contract()

    html = render_html(contract)

    assert html.startswith("<!DOCTYPE html>")
    assert '<html lang="zh-CN">' in html
    assert '<meta charset="utf-8">' in html
    assert f"<title>{TITLE}</title>" in html
    assert contract.content_hash() in _text_of(html)
    assert not any(external in html for external in ("<link", "src=", "url(", "@import"))


def test_html_shows_service_content_in_chinese_and_beijing_time() -> None:
    text = _text_of(render_html(make_contract()))

    assert all(word in text for word in ("月嫂", "北京市朝阳区", "会做月子餐、家中有猫", "624 小时", "按月"))
    assert "2024-06-04 20:00（北京时间）" in text  # the start, 12:00 UTC
    assert "7 天，至 2024-06-11 20:00（北京时间） 止" in text
    assert "3日内更换" in text


def test_html_formats_money_exactly_from_fen() -> None:
    contract = make_contract(
        service=make_service(price_fen=1_239),
        terms=make_terms(wage_fen=1_234, management_fee_fen=5, deposit_fen=5),
    )

    text = _text_of(render_html(contract))

    assert all(money in text for money in ("¥12.34", "¥0.05", "¥12.39", "¥5,000.00"))


def test_html_states_the_cancellation_clause_as_part_five() -> None:
    text = _text_of(render_html(make_contract()))

    assert "五、取消服务" in text
    assert "不足6小时或服务开始后取消的，支付服务费用的30%（¥4,500.00）" in text
    assert "六、违约责任" in text
    assert "七、争议解决" in text


def test_a_contract_drafted_before_the_clause_renders_as_it_did() -> None:
    text = _text_of(render_html(make_contract(terms=make_terms(cancellation=None))))

    assert "取消服务" not in text
    assert "五、违约责任" in text
    assert "六、争议解决" in text


def test_html_without_a_trial_or_known_district_says_so() -> None:
    contract = make_contract(service=make_service(district_code="999999"), terms=make_terms(trial_days=0))

    text = _text_of(render_html(contract))

    assert "无试用期" in text
    assert "999999" in text


@pytest.mark.parametrize(
    "changes",
    [
        {"parties": make_parties(consumer_name=SCRIPT)},
        {"parties": make_parties(address=SCRIPT)},
        {"parties": make_parties(consumer_phone=SCRIPT)},
        {"parties": make_parties(consumer_ref=SCRIPT)},
        {"parties": make_parties(platform_id=SCRIPT)},
        {"parties": make_parties(company_id=SCRIPT)},
        {"parties": make_parties(worker_id=SCRIPT)},
        {"parties": make_parties(card_id=SCRIPT)},
        {"service": make_service(special_needs=(SCRIPT,))},
        {"service": make_service(district_code=SCRIPT)},
    ],
)
def test_every_value_is_escaped_in_html(changes: dict[str, Any]) -> None:
    html = render_html(make_contract(**changes))

    assert SCRIPT not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert SCRIPT in _text_of(html)


def test_pdf_is_a_pdf_with_the_cjk_font_embedded(font: Path) -> None:
    pdf = render_pdf(make_contract(), font)

    assert pdf.startswith(b"%PDF-")
    assert b"/FontFile2" in pdf


def test_the_same_contract_renders_the_same_pdf_bytes(font: Path) -> None:
    assert render_pdf(make_contract(), font) == render_pdf(make_contract(), font)


def test_a_different_contract_renders_different_pdf_bytes(font: Path) -> None:
    other = make_contract(parties=make_parties(consumer_name="李四"))

    assert render_pdf(other, font) != render_pdf(make_contract(), font)


def test_pdf_text_has_the_title_the_consumer_the_money_and_the_hash(font: Path) -> None:
    contract = make_contract()

    text = _pdf_text(render_pdf(contract, font))

    assert "家政服务合同" in text
    assert "王小红" in text
    assert "¥12,000.00" in text
    assert "取消服务" in text
    assert "支付服务费用的40%" in "".join(text.split())
    assert contract.content_hash() in "".join(text.split())


def test_markup_in_a_value_is_printed_as_text_in_the_pdf(font: Path) -> None:
    contract = make_contract(parties=make_parties(consumer_name="<b>李四</b> & 王五"))

    assert "<b>李四</b> & 王五" in _pdf_text(render_pdf(contract, font))

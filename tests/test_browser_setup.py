"""The browser tests' set-up, without any service: Debian's chromium launches under playwright, the
Chinese text is set in Noto Sans CJK, axe-core runs in the page (even under a strict
Content-Security-Policy), and screenshots land in .build/screenshots."""

from __future__ import annotations

from playwright.async_api import Browser, Page

from tests.integration.browser import (
    SCREENSHOTS,
    axe_violations,
    browser,
    describe,
    new_desktop_page,
    new_phone_page,
    screenshot,
)

__all__ = ["browser"]

FORM = """<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>家政服务预约</title>{csp}</head>
<body><main><h1 id="title">家政服务消费券</h1><p>北京市家政服务消费补贴</p><input type="text"></main></body>
</html>"""

STRICT_CSP = """<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'self'">"""


async def platform_fonts(page: Page, selector: str) -> set[str]:
    """The fonts chromium actually drew the element's text with (the DevTools protocol's answer)."""
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("DOM.enable")
    await cdp.send("CSS.enable")
    document = await cdp.send("DOM.getDocument")
    node = await cdp.send("DOM.querySelector", {"nodeId": document["root"]["nodeId"], "selector": selector})
    used = await cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]})
    return {font["familyName"] for font in used["fonts"]}


async def test_phone_page_chinese_axe_and_screenshot(browser: Browser) -> None:
    page = await new_phone_page(browser)
    try:
        await page.set_content(FORM.format(csp=""))
        shown = await page.evaluate(
            "() => [innerWidth, innerHeight, devicePixelRatio, navigator.language,"
            " Intl.DateTimeFormat().resolvedOptions().timeZone]"
        )
        assert shown == [375, 812, 2, "zh-CN", "Asia/Shanghai"]
        assert any("Noto Sans CJK" in family for family in await platform_fonts(page, "#title"))

        violations = await axe_violations(page)
        assert [v["id"] for v in violations] == ["label"], describe(violations)
        assert violations[0]["targets"] == ["input"]
        assert "label" in describe(violations)
        assert await axe_violations(page, rules_off=["label"]) == []

        path = await screenshot(page, "browser-setup-phone")
        assert path == SCREENSHOTS / "browser-setup-phone.png"
        png = path.read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert int.from_bytes(png[16:20], "big") == 375 * 2  # the IHDR width, at the device's scale
    finally:
        await page.context.close()


async def test_axe_runs_under_a_strict_content_security_policy(browser: Browser) -> None:
    page = await new_desktop_page(browser)
    try:
        await page.set_content(FORM.format(csp=STRICT_CSP))
        assert await page.evaluate("() => [innerWidth, innerHeight]") == [1280, 900]
        violations = await axe_violations(page)
        assert [v["id"] for v in violations] == ["label"], describe(violations)
    finally:
        await page.context.close()

"""Browser tests: Debian's chromium driven by PyPI's playwright, axe-core in the page, screenshots.

No browser is downloaded: playwright launches Debian's `chromium` through `executable_path` (the
Chinese text is set in fonts-noto-cjk); `make deps` installs both (as root) or says what to
install, and puts axe-core in .build/npm/axe. A missing browser or axe-core fails the test: it is
never skipped.

A test module takes the `browser` fixture by importing it (or tests/integration/conftest.py
imports it once for all of them); however many modules import it, the session launches one
chromium::

    from tests.integration.browser import axe_violations, browser, describe, new_phone_page

    __all__ = ["browser"]  # the fixture, for pytest (and for ruff: no unused import)

    async def test_home_page_is_accessible(browser: Browser) -> None:
        page = await new_phone_page(browser, "http://127.0.0.1:8080")
        try:
            await page.goto("/")
            violations = await axe_violations(page)
            assert not violations, describe(violations)
        finally:
            await page.context.close()

Each page lives in a context of its own (cookies, storage); closing `page.context` ends both.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any, TypedDict

import pytest
from playwright.async_api import Browser, Error, Page, Playwright, ViewportSize, async_playwright

ROOT = Path(__file__).resolve().parents[2]
AXE_JS = ROOT / ".build" / "npm" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / ".build" / "screenshots"

INSTALL = "run `sudo apt-get install chromium fonts-noto-cjk` (or `make deps` as root)"

# JZ_CHROMIUM names another chromium; otherwise Debian's `chromium` on PATH.
CHROMIUM: str | None = os.environ.get("JZ_CHROMIUM") or shutil.which("chromium")

# The WCAG 2.0 and 2.1 A and AA rules: what the accessibility checks hold the pages to.
WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")

PHONE: ViewportSize = {"width": 375, "height": 812}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}


class Violation(TypedDict):
    """One axe-core rule a page breaks: the rule, how bad, what it asks, and where (CSS selectors)."""

    id: str
    impact: str | None
    help: str
    targets: list[str]


def chromium_path() -> str:
    """The chromium to launch; fails the test (never skips) when there is none."""
    if CHROMIUM is None:
        pytest.fail(f"no chromium for the browser tests: {INSTALL}", pytrace=False)
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"JZ_CHROMIUM={CHROMIUM} is not an executable", pytrace=False)
    return CHROMIUM


def launch_args() -> list[str]:
    """Chromium's sandbox refuses to run as root (containers, CI): there it runs without."""
    return ["--no-sandbox"] if os.geteuid() == 0 else []


class _Shared:
    """The one chromium of the session. Every module that imports `browser` gets a fixture of its
    own (all session-scoped, all torn down at the session's end): they share one launch, and the
    last to end closes it."""

    playwright: Playwright | None = None
    browser: Browser | None = None
    users = 0


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Debian's chromium, headless, for the whole session (the session's event loop)."""
    if _Shared.browser is None:
        executable = chromium_path()
        playwright = await async_playwright().start()
        try:
            _Shared.browser = await playwright.chromium.launch(
                executable_path=executable, headless=True, args=launch_args()
            )
        except BaseException:
            await playwright.stop()
            raise
        _Shared.playwright = playwright
    _Shared.users += 1
    try:
        yield _Shared.browser
    finally:
        _Shared.users -= 1
        if _Shared.users == 0:
            launched, driver = _Shared.browser, _Shared.playwright
            _Shared.browser = _Shared.playwright = None
            try:
                if launched is not None:
                    await launched.close()
            finally:
                if driver is not None:
                    await driver.stop()


async def _new_page(browser: Browser, base_url: str | None, **options: Any) -> Page:
    context = await browser.new_context(
        base_url=base_url, locale="zh-CN", timezone_id="Asia/Shanghai", **options
    )
    return await context.new_page()


async def new_phone_page(browser: Browser, base_url: str | None = None) -> Page:
    """A page on a phone (375x812 at 2x, touch), in Chinese and Beijing time; close `page.context`."""
    return await _new_page(
        browser, base_url, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )


async def new_desktop_page(browser: Browser, base_url: str | None = None) -> Page:
    """A page on a desktop (1280x900), in Chinese and Beijing time; close `page.context`."""
    return await _new_page(browser, base_url, viewport=DESKTOP)


_AXE_RUN = """async ([tags, off]) => {
    const rules = Object.fromEntries(off.map((id) => [id, {enabled: false}]));
    const results = await axe.run(document, {runOnly: {type: 'tag', values: tags}, rules});
    return results.violations.map((v) => ({
        id: v.id,
        impact: v.impact ?? null,
        help: v.help,
        targets: v.nodes.map((node) => node.target.map(String).join(' ')),
    }));
}"""


async def axe_violations(page: Page, *, rules_off: Iterable[str] = ()) -> list[Violation]:
    """The WCAG 2.0/2.1 A and AA rules the page as it is now breaks, less `rules_off` (rule ids)."""
    if not AXE_JS.is_file():
        pytest.fail(f"axe-core is missing ({AXE_JS.relative_to(ROOT)}): run `make deps`", pytrace=False)
    if not await page.evaluate("() => typeof axe !== 'undefined'"):
        try:
            await page.add_script_tag(path=AXE_JS)
        except Error as e:
            # A Content-Security-Policy without 'unsafe-inline' refuses the script tag; the
            # debugger's evaluation is not held to it (the page's own scripts still are).
            if "Content Security Policy" not in e.message:
                raise
            await page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    violations: list[Violation] = await page.evaluate(_AXE_RUN, [list(WCAG_TAGS), list(rules_off)])
    return violations


def describe(violations: Iterable[Violation]) -> str:
    """The violations, one a line with where they are, for an assertion's message."""
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']}")
        lines.extend(f"    at {target}" for target in v["targets"])
    return "\n".join(lines) or "no violations"


async def screenshot(page: Page, name: str) -> Path:
    """The whole page as .build/screenshots/<name>.png (a test artefact); returns the path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=path, full_page=True)
    return path

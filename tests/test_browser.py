"""A user's journey through all four tabs in a real browser (Debian's Chromium driven by Playwright), saving a
screenshot of each tab to a temporary folder, or to $MODERATION_SCREENSHOTS (docs/screenshots refreshes the
README's: `MODERATION_SCREENSHOTS=docs/screenshots python -m pytest tests/test_browser.py`)."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from test_app import EXAMPLE_IMAGE, ROOT, served_app  # noqa: F401  (served_app is a fixture)

from moderation import settings

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = settings.path("MODERATION_SCREENSHOTS") or Path(tempfile.mkdtemp(prefix="moderation-screenshots-"))
# No sandbox (containers, root), no GPU, and no background traffic: the page must work offline.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
TIMEOUT_MS = 120_000  # first use of each model happens inside the journey, on a busy 2-core machine

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed: apt-get install -y chromium"),
]


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _new_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    return page


@pytest.fixture(scope="module")
def page(browser, served_app):  # noqa: F811
    return _new_page(browser, served_app.demo.local_url)


def _open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def _screenshot(page, tab: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{tab}.png"), full_page=True)
    assert (SCREENSHOTS / f"{tab}.png").stat().st_size > 10_000


def _no_error_badge(page) -> None:
    """Neither an error toast nor a component's red "Error" status: every failure is a message in the page."""
    assert page.locator(".toast-body.error").count() == 0
    assert page.get_by_text("Error", exact=True).count() == 0


def test_four_tab_journey(page):
    from playwright.sync_api import expect

    _open_tab(page, "Text")
    page.get_by_label("Text to moderate").fill("you are a worthless idiot")
    page.get_by_role("button", name="Moderate", exact=True).click()
    expect(page.locator("#text-verdict")).to_contain_text("Text flagged: harassment", timeout=TIMEOUT_MS)
    expect(page.get_by_text("idiot", exact=True).first).to_be_visible()
    _no_error_badge(page)
    _screenshot(page, "text")

    _open_tab(page, "Image")
    page.locator("#image-input input[type=file]").set_input_files(str(EXAMPLE_IMAGE))
    page.get_by_role("button", name="Moderate image").click()
    expect(page.locator("#image-verdict")).to_contain_text("Image", timeout=TIMEOUT_MS)
    expect(page.get_by_text("No match in the known-image blocklist")).to_be_visible()
    _no_error_badge(page)
    _screenshot(page, "image")

    _open_tab(page, "Generation")
    page.get_by_label("Prompt", exact=True).fill("The weather was great so we")
    page.get_by_label("Seed (-1: random)").fill("7")  # the same screenshot every run
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#generation-verdict")).to_contain_text("Output", timeout=TIMEOUT_MS)
    expect(page.locator("#generation-verdict")).not_to_contain_text("still generating", timeout=TIMEOUT_MS)
    expect(page.get_by_text("Prompt allowed")).to_be_visible()
    _no_error_badge(page)
    _screenshot(page, "generation")

    _open_tab(page, "Metrics")
    page.get_by_role("button", name="Evaluate", exact=True).click()
    expect(page.locator("#metrics-reading")).to_contain_text("Accuracy", timeout=TIMEOUT_MS)
    expect(page.locator("#metrics-plot img")).to_be_visible()
    expect(page.locator("#metrics-report")).to_contain_text("macro avg")
    page.get_by_label("Confusion matrix for").click()
    page.get_by_role("option", name="harassment").click()
    expect(page.locator("#metrics-reading")).to_contain_text("Reading the harassment view")
    _no_error_badge(page)
    _screenshot(page, "metrics")


def test_offline_journey_names_what_cannot_load_and_shows_no_error_badge(browser, served_app, tmp_path,  # noqa: F811
                                                                          monkeypatch):
    import huggingface_hub.constants
    from playwright.sync_api import expect

    # Offline, with no image model: the tabs say so on arrival, and using them gives messages, never red badges.
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    monkeypatch.setenv("MODERATION_IMAGE_MODEL", str(tmp_path / "missing" / "vit"))
    page = _new_page(browser, served_app.demo.local_url)
    expect(page.locator("#text-notice")).to_contain_text("bert-base-uncased")
    page.get_by_label("Model").first.click()
    expect(page.get_by_role("option", name="bert-base-uncased (unavailable here)")).to_be_visible()
    page.keyboard.press("Escape")
    _open_tab(page, "Image")
    expect(page.locator("#image-notice")).to_contain_text("local checkpoint vit")
    page.locator("#image-input input[type=file]").set_input_files(str(EXAMPLE_IMAGE))
    page.get_by_role("button", name="Moderate image").click()
    expect(page.locator("#image-verdict")).to_contain_text("Image model unavailable", timeout=TIMEOUT_MS)
    expect(page.get_by_text("local checkpoint vit").first).to_be_visible()
    assert str(tmp_path) not in page.content()  # the server's folders are not shown, in the notice or the message
    _no_error_badge(page)
    _screenshot(page, "image-offline")

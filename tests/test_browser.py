"""Real-browser test: headless Chromium (Playwright) against a real uvicorn server on loopback.

It walks the main path a patient takes: search for lupus nephritis, keep only recruiting trials, open
NCT05631717, and finds every section of the reference study page on it. The screenshot of the study page
is kept as a test artefact (``artifacts/study-NCT05631717.png``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from live_server import live_server

from trialfinder.web import Settings, create_app

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REFERENCE_HEADINGS = [
    "Status and phase", "Conditions", "Treatments", "Study type", "Funder types", "Identifiers",
    "Details and patient eligibility", "About", "Full description", "Enrollment", "Sex", "Ages",
    "Volunteers", "Inclusion criteria", "Exclusion criteria", "Trial design", "Trial contacts and locations",
    "Central trial contact",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Chromium at /usr/bin/chromium "
                                                      "(Debian: apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def server(sample_db_master: Path) -> Iterator[str]:
    """A real uvicorn server on a free loopback port, serving the sample database."""
    app = create_app(Settings(db=str(sample_db_master), auto_load_sample=False))
    with live_server(app, log_level="warning", lifespan="on") as (url, _port):
        yield url


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    # no network in tests: tile requests fail the way they do offline
    pg.route("https://*.openstreetmap.org/**", lambda route: route.abort())
    pg.route("https://tile.openstreetmap.org/**", lambda route: route.abort())
    pg.errors = errors
    pg.foreign = []  # requests that would leave the machine
    pg.on("request", lambda req: pg.foreign.append(req.url)
          if not req.url.startswith(("http://127.0.0.1", "data:", "blob:", "about:")) else None)
    yield pg
    context.close()


def test_search_filter_open_study(server: str, page) -> None:
    page.goto(server + "/")
    assert "Find clinical trials" in page.title()
    page.get_by_label("Condition or disease").fill("lupus nephritis")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**/search?**")
    assert page.locator("ol.hits li.hit").count() > 0

    # filter to recruiting with the status choice of the refine form
    page.get_by_label("Recruitment status").select_option("1")
    page.get_by_role("button", name="Search").first.click()
    page.wait_for_url("**recruiting=1**")
    assert "intr=" not in page.url, "empty fields are not sent"
    statuses = page.locator("ol.hits .meta .badge:first-child").all_inner_texts()
    assert statuses and all(s == "Recruiting" for s in statuses), statuses

    page.locator("ol.hits a[href='/study/NCT05631717']").click()
    page.wait_for_url("**/study/NCT05631717")
    assert "NCT05631717" in page.title()
    body = page.locator("article.study").inner_text().split("On this page", 1)[-1]
    pos = 0
    for heading in REFERENCE_HEADINGS:
        assert page.get_by_role("heading", name=heading, exact=True).count() >= 1, heading
        found = body.find(heading, pos)
        assert found >= 0, f"section {heading!r} missing or out of order"
        pos = found + len(heading)
    assert page.get_by_role("link", name="View NCT05631717 on ClinicalTrials.gov").count() == 1

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "study-NCT05631717.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert not page.errors, page.errors


def test_keyboard_and_phone(server: str, browser) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(server + "/study/NCT05631717")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
        for path in ("/", "/search?cond=cancer", "/study/NCT05631717", "/locations", "/conditions"):
            page.goto(server + path)
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 1, f"{path} scrolls sideways on a phone ({overflow}px)"
    finally:
        context.close()


def test_map_with_tiles_offline(server: str, page) -> None:
    page.goto(server + "/study/NCT06471972")
    page.wait_for_selector("#study-map[data-ready='1']", timeout=10_000)
    assert page.locator(".leaflet-interactive").count() >= 1  # site markers
    assert page.locator("ul.sites li.site").count() >= 1  # the list stays usable
    page.goto(server + "/search?near=Boston%2C+MA&dist=100mi")
    page.wait_for_selector("#results-map[data-ready='1']", timeout=10_000)
    assert not page.errors, page.errors


def _first_result_top(page) -> float:
    return page.evaluate("document.querySelector('ol.hits li.hit').getBoundingClientRect().top")


def test_phone_results_start_on_the_first_screen(server: str, browser) -> None:
    """On a 390 px phone the query is one line (Edit, Filters) and the first result is on the first screen."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.route("https://**", lambda route: route.abort())
    try:
        for path in ("/search?cond=cancer&recruiting=open", "/search?cond=cancer&near=Boston%2C+MA&dist=100mi"):
            page.goto(server + path)
            top = _first_result_top(page)
            assert 0 < top < 844 - 100, f"{path}: first result at y={top}"
            assert not page.locator("form#refine").is_visible()
        page.get_by_role("link", name="Edit").click()
        assert page.locator("form#refine").is_visible()
        assert page.get_by_label("My age (years)").is_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        page.goto(server + "/search?cond=cancer&recruiting=open")
        page.screenshot(path=str(ARTIFACTS / "results-phone.png"))
        page.goto(server + "/study/NCT02369484#sec-outcome_results")
        assert page.locator(".study-actions").is_visible()  # sticky Check eligibility / Contact
        box = page.locator(".study-actions").bounding_box()
        assert box and box["y"] + box["height"] >= 844 - 2
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1, f"the results tables push the page sideways ({overflow}px)"
        page.screenshot(path=str(ARTIFACTS / "study-results-phone.png"))
    finally:
        context.close()


def test_study_with_posted_results(server: str, page) -> None:
    page.goto(server + "/search?results=with&cond=lung+cancer")
    assert page.locator("ol.hits .has-results").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "results-desktop.png"))
    page.goto(server + "/study/NCT02513394")
    for heading in ("Study results", "Participant flow", "Baseline characteristics", "Outcome measures",
                    "Adverse events", "Results point of contact"):
        assert page.get_by_role("heading", name=heading, exact=True).count() == 1, heading
    assert page.get_by_text("Invasive Disease Free Survival (iDFS)").first.is_visible()
    organ = page.locator("details.organ-system").first
    organ.locator("summary").click()
    assert organ.locator("table").is_visible()
    # the site filter narrows the list
    page.get_by_label("Filter sites").fill("Boston")
    visible = page.locator("li.site:visible")
    assert visible.count() >= 1 and all("Boston" in t for t in visible.all_inner_texts())
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(server + "/study/NCT02369484")
    page.screenshot(path=str(ARTIFACTS / "study-results-desktop.png"), full_page=True)
    assert not page.errors, page.errors


def test_maps_send_nothing_off_the_machine_and_markers_take_the_keyboard(server: str, page) -> None:
    page.goto(server + "/search?cond=cancer&near=Boston%2C+MA&dist=100mi")
    page.wait_for_selector("#results-map[data-ready='1']", timeout=10_000)
    # the bundled country outlines are drawn (no tiles requested)
    page.wait_for_function("document.querySelectorAll('#results-map svg path').length > 50", timeout=10_000)
    markers = page.locator("#results-map .leaflet-marker-icon")
    assert markers.count() >= 1
    first = markers.first
    assert first.get_attribute("tabindex") == "0" and first.get_attribute("role") == "button"
    name = first.get_attribute("aria-label") or ""
    assert "from the searched place" in name, name  # status and distance are in the marker's name
    first.focus()
    page.keyboard.press("Enter")
    popup = page.locator("#results-map .leaflet-popup-content")
    popup.wait_for(timeout=5_000)
    assert "from the searched place" in popup.inner_text()
    page.goto(server + "/locations")
    page.wait_for_selector("#locations-map[data-ready='1']", timeout=10_000)
    assert page.locator("#locations-map .leaflet-marker-icon").count() > 20
    assert not page.foreign, page.foreign[:5]
    assert not page.errors, page.errors
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "locations-map.png"), full_page=True)


AXE_PAGES = {
    "home": "/",
    "results": "/search?cond=lupus+nephritis&near=Boston%2C+MA&dist=500mi",
    "study": "/study/NCT05631717",
    "match": "/match",
    "locations": "/locations",
}


@pytest.mark.parametrize("width", [1280, 390])
def test_axe_finds_no_violations(server: str, browser, width: int) -> None:
    """axe-core (vendored, injected into each page) reports no violation of any impact."""
    # the page's CSP (script-src 'self') would refuse the injected script; the test browser lets it in
    context = browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
    page = context.new_page()
    failures = {}
    try:
        for name, path in AXE_PAGES.items():
            page.goto(server + path)
            page.wait_for_load_state("networkidle")
            page.add_script_tag(path=str(AXE))
            result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
            found = [f"{v['id']} ({v['impact']}): {v['help']} -- {v['nodes'][0]['target']}"
                     for v in result["violations"]]
            if found:
                failures[name] = found
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"axe-{name}-{width}.png"), full_page=True)
    finally:
        context.close()
    assert not failures, failures


def test_verdicts_are_announced(server: str, page) -> None:
    """After "check my eligibility", focus moves to the verdict, a polite live region (read out at once)."""
    page.goto(server + "/study/NCT05631717/eligibility")
    page.locator("form[aria-label='Eligibility questions'] button[type='submit']").first.click()
    page.wait_for_selector("#verdict")
    assert page.evaluate("document.activeElement.id") == "verdict"
    assert page.locator("#verdict").get_attribute("aria-live") == "polite"


CONTRAST_JS = """
(el) => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).slice(0, 3).map(Number);
  const lum = ([r, g, b]) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
                               return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  let bg = el, color = "rgba(0, 0, 0, 0)";
  while (bg && (color = getComputedStyle(bg).backgroundColor) === "rgba(0, 0, 0, 0)") bg = bg.parentElement;
  const ring = lum(rgb(getComputedStyle(el).outlineColor)), back = lum(rgb(bg ? color : "rgb(255,255,255)"));
  return (Math.max(ring, back) + 0.05) / (Math.min(ring, back) + 0.05);
}
"""


def test_focus_ring_contrast_is_at_least_3_to_1(server: str, page) -> None:
    page.goto(server + "/search?cond=lupus")
    for selector in ("header.site a", ".card button, .card input", "ol.hits a", "aside.facets a"):
        target = page.locator(selector).first
        target.focus()
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Tab")  # keyboard focus, so :focus-visible applies
        handle = target.element_handle()
        assert page.evaluate("(el) => document.activeElement === el && el.matches(':focus-visible')", handle), selector
        assert page.evaluate("(el) => getComputedStyle(el).outlineStyle", handle) == "solid", selector
        ratio = page.evaluate(CONTRAST_JS, handle)
        assert ratio >= 3, (selector, ratio)

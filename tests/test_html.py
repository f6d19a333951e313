"""The HTML handout, opened in a real headless chromium through selenium.

What is checked against what:
- the highlighted edges against the edges `derive which --json` lists (the
  engine's own answer, run as the CLI) and, for the default example, against
  the paths written out by hand below;
- the chain rule's number against central differences of the loss written
  here in mpmath from the textbook formulas (nothing from derive);
- the highlight's colour against diagram.ROLE_COLOURS, read from screenshot
  pixels at 1280 px and 390 px, and "nothing cut off" as scrollWidth <= innerWidth;
- no console errors (the browser log) and no network requests (chromium's
  performance log of the DevTools protocol, and the page's resource entries).

Chromium and chromedriver come from ./dev.sh setup; without them these tests
skip, except under CI=true, where that is a failure.  How long a page takes
to open is recorded in the report (record_property), never asserted: the
timing lives in benchmarks/bench_html.py.
"""

import contextlib
import io
import json
import os
import shutil
import struct
import time
import zlib
from pathlib import Path

import mpmath
import pytest

from derive.cli import main
from derive.errors import ToolError
from derive.render import diagram, html, markdown

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "derive" / "data" / "default.toml"
#: A screenshot pixel counts as a role's colour within this RGB distance (anti-aliasing).
COLOUR_TOLERANCE = 60
#: The page's 9 significant digits against 50-digit central differences.
VALUE_RTOL = 1e-8


def _run(*argv: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(argv)) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def browser():
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        if os.environ.get("CI") == "true":
            pytest.fail("chromium/chromedriver missing (./dev.sh setup installs them); required under CI=true")
        pytest.skip("chromium/chromedriver not installed (./dev.sh setup)")
    if os.environ.get("CI") == "true":
        from selenium import webdriver
    else:
        webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    out = tmp_path_factory.mktemp("html")
    _run("explain", str(DEFAULT), "--format", "html", "-o", str(out))
    _run("explain", "--layers", "784,30,10", "--format", "md,html", "-o", str(out))
    which_page = out / "which.html"
    which_page.write_text(_run("which", str(DEFAULT), "W2[1,2]", "--format", "html"))
    return {"default": out / "default.html", "mnist": out / "net-784-30-10.html", "which": which_page}


def _open(driver, path: Path, width: int = 1280, height: int = 900) -> float:
    """Load a page at a viewport width; seconds until MathJax has typeset it."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})
    driver.get_log("browser"), driver.get_log("performance")  # drop earlier pages' entries
    _park_pointer(driver)
    start = time.perf_counter()
    driver.get(path.as_uri())
    driver.execute_async_script("var done = arguments[0]; MathJax.startup.promise.then(() => done(1));")
    return time.perf_counter() - start


def _typeset(driver):
    driver.execute_async_script("var done = arguments[0]; MathJax.typesetPromise().then(() => done(1));")


def _highlighted(driver) -> set[tuple[str, str]]:
    return {tuple(e) for e in driver.execute_script(
        "return [...document.querySelectorAll('#diagram line[data-from].on-path')]"
        ".map(e => [e.dataset.from, e.dataset.to])")}


def _drawn(driver) -> set[tuple[str, str]]:
    return {tuple(e) for e in driver.execute_script(
        "return [...document.querySelectorAll('#diagram line[data-from]')].map(e => [e.dataset.from, e.dataset.to])")}


def _which_edges(*spec: str) -> set[tuple[str, str]]:
    answer = json.loads(_run("which", *spec, "--json"))
    return {tuple(e) for route in answer["edges"] for e in route}


def _click(driver, param: str):
    from selenium.webdriver.common.by import By

    button = driver.find_element(By.CSS_SELECTOR, f'button[data-param="{param}"]')
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()
    _park_pointer(driver)
    _typeset(driver)


def _park_pointer(driver):
    """The pointer to the page's corner, so a later scroll does not hover (preview) a control."""
    from selenium.webdriver.common.action_chains import ActionBuilder

    actions = ActionBuilder(driver)
    actions.pointer_action.move_to_location(0, 0)
    actions.perform()


# -- the reference: the default example's loss, written out in mpmath -------------------
def _reference_gradient(j: int, k: int) -> mpmath.mpf:
    """dL/dW1[j,k] of the 2-2-2 sigmoid half-SSE example by 50-digit central differences."""
    mpmath.mp.dps = 50
    x, y = [mpmath.mpf("0.05"), mpmath.mpf("0.10")], [mpmath.mpf("0.01"), mpmath.mpf("0.99")]
    W2 = [[mpmath.mpf("0.40"), mpmath.mpf("0.45")], [mpmath.mpf("0.50"), mpmath.mpf("0.55")]]
    b1, b2 = [mpmath.mpf("0.35")] * 2, [mpmath.mpf("0.60")] * 2
    sig = lambda v: 1 / (1 + mpmath.exp(-v))

    def loss(W1):
        h = [sig(sum(W1[r][c] * x[c] for c in range(2)) + b1[r]) for r in range(2)]
        o = [sig(sum(W2[r][c] * h[c] for c in range(2)) + b2[r]) for r in range(2)]
        return sum((o[r] - y[r]) ** 2 for r in range(2)) / 2

    step = mpmath.mpf("1e-20")
    grid = lambda d: [[mpmath.mpf(v) + (d if (r, c) == (j - 1, k - 1) else 0) for c, v in enumerate(row)]
                      for r, row in enumerate([["0.15", "0.20"], ["0.25", "0.30"]])]
    return (loss(grid(step)) - loss(grid(-step))) / (2 * step)


def _pixels(png: bytes):
    """A PNG screenshot (8-bit RGB or RGBA, not interlaced) as rows of (r, g, b)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, header = 8, [], None
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        body = png[pos + 8:pos + 8 + length]
        header = body if kind == b"IHDR" else header
        chunks += [body] if kind == b"IDAT" else []
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour in (2, 6), (depth, colour)
    n = 3 if colour == 2 else 4
    raw, rows, prev = zlib.decompress(b"".join(chunks)), [], bytearray(width * n)
    for r in range(height):
        kind, line = raw[r * (width * n + 1)], bytearray(raw[r * (width * n + 1) + 1:(r + 1) * (width * n + 1)])
        for i in range(len(line)):
            a, b, c = line[i - n] if i >= n else 0, prev[i], prev[i - n] if i >= n else 0
            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
            line[i] = (line[i] + [0, a, b, (a + b) // 2,
                                  a if pa <= pb and pa <= pc else b if pb <= pc else c][kind]) & 255
        rows.append(line)
        prev = line
    return [[tuple(row[i:i + 3]) for i in range(0, len(row), n)] for row in rows]


def _near(pixel, hex_colour: str) -> bool:
    want = tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return sum((a - b) ** 2 for a, b in zip(pixel, want)) ** 0.5 <= COLOUR_TOLERANCE


# -- in the browser ------------------------------------------------------------------
def test_html_no_console_errors_and_no_network_requests(browser, pages, record_property):
    for name in ("default", "mnist", "which"):
        seconds = _open(browser, pages[name])
        record_property(f"open_seconds_{name}", round(seconds, 3))
        _click(browser, "W1[1,1]")
        errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
        assert errors == [], name
        events = [json.loads(e["message"])["message"] for e in browser.get_log("performance")]
        requested = [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]
        assert requested == [pages[name].as_uri()], name
        assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0


def test_html_click_highlights_exactly_the_which_paths(browser, pages):
    _open(browser, pages["default"])
    assert _highlighted(browser) == set()
    _click(browser, "W1[1,1]")
    by_hand = {("x[1]", "a1[1]"), ("a1[1]", "a2[1]"), ("a1[1]", "a2[2]"), ("a2[1]", "L"), ("a2[2]", "L")}
    assert _which_edges(str(DEFAULT), "W1[1,1]") == by_hand
    assert _highlighted(browser) == by_hand
    roles = dict(browser.execute_script(
        "return [...document.querySelectorAll('#diagram line.on-path')].map(e => [e.dataset.from + '>' + e.dataset.to, e.dataset.role])"))
    assert roles == {"x[1]>a1[1]": "input", "a1[1]>a2[1]": "weight", "a1[1]>a2[2]": "weight",
                     "a2[1]>L": "loss", "a2[2]>L": "loss"}
    _click(browser, "b2[2]")  # a new choice replaces the old highlight
    assert _highlighted(browser) == {("a2[2]", "L")}


def test_html_chain_rule_shows_the_independent_number(browser, pages):
    from selenium.webdriver.common.by import By

    _open(browser, pages["default"])
    _click(browser, "W1[1,1]")
    panel = browser.find_element(By.ID, "chain")
    assert "The chain rule for W1[1,1]" in panel.text
    assert "x[1] → a1[1] → a2[1] → L" in panel.text and "x[1] → a1[1] → a2[2] → L" in panel.text
    shown = float(panel.find_element(By.CSS_SELECTOR, ".value").get_attribute("data-value"))
    assert shown == pytest.approx(float(_reference_gradient(1, 1)), rel=VALUE_RTOL)
    # typeset: every formula of the panel became MathJax's SVG, none is left as raw TeX
    assert len(panel.find_elements(By.CSS_SELECTOR, "mjx-container svg")) >= 5
    assert "\\(" not in panel.text and "merror" not in panel.get_attribute("innerHTML")


def test_html_mnist_highlight_is_the_which_paths_that_are_drawn(browser, pages):
    _open(browser, pages["mnist"])
    _click(browser, "W1[1,1]")
    listed = _which_edges("--layers", "784,30,10", "W1[1,1]")
    assert len(listed) == 1 + 10 + 10  # x1 -> a1_1, then a1_1 -> each output -> L
    drawn = _drawn(browser)
    assert _highlighted(browser) == listed & drawn
    shown = {j for j in range(1, 11) if (f"a2[{j}]", "L") in drawn}
    assert len(shown) == 7 and _highlighted(browser) == (
        {("x[1]", "a1[1]")} | {("a1[1]", f"a2[{j}]") for j in shown} | {(f"a2[{j}]", "L") for j in shown})


def test_html_keyboard_selection(browser, pages):
    from selenium.webdriver.common.keys import Keys

    _open(browser, pages["default"])
    body = browser.switch_to.active_element
    for _ in range(40):
        body.send_keys(Keys.TAB)
        body = browser.switch_to.active_element
        if body.get_attribute("data-param") == "W2[1,1]":
            break
    assert body.get_attribute("data-param") == "W2[1,1]"
    assert _highlighted(browser) == set()  # focus alone chooses nothing
    body.send_keys(Keys.ENTER)
    _typeset(browser)
    assert _highlighted(browser) == {("a1[1]", "a2[1]"), ("a2[1]", "L")} == _which_edges(str(DEFAULT), "W2[1,1]")
    assert body.get_attribute("aria-pressed") == "true"


@pytest.mark.parametrize("width", [1280, 390])
def test_html_screenshot_shows_the_highlight_and_nothing_cut_off(browser, pages, width):
    _open(browser, pages["default"], width=width, height=800)
    _click(browser, "W1[1,1]")
    browser.execute_script("document.getElementById('diagram').scrollIntoView()")
    edges = browser.execute_script("""return [['x[1]', 'a1[1]'], ['a2[1]', 'L']].map(([a, b]) => {
        const r = document.querySelector(`line[data-from="${a}"][data-to="${b}"]`).getBoundingClientRect();
        return [Math.round(r.x + r.width / 2), Math.round(r.y + r.height / 2)]; })""")
    image = _pixels(browser.get_screenshot_as_png())
    assert len(image[0]) == width
    (x0, y0), (x1, y1) = edges
    assert _near(image[y0][x0], diagram.ROLE_COLOURS["input"]), image[y0][x0]
    assert _near(image[y1][x1], diagram.ROLE_COLOURS["loss"]), image[y1][x1]
    scroll, inner = browser.execute_script("return [document.documentElement.scrollWidth, innerWidth]")
    assert scroll <= inner
    right = browser.execute_script("return document.querySelector('#diagram svg').getBoundingClientRect().right")
    assert right <= inner


def test_html_which_page_opens_with_its_parameter_chosen(browser, pages):
    _open(browser, pages["which"])
    assert _highlighted(browser) == _which_edges(str(DEFAULT), "W2[1,2]") == {("a1[2]", "a2[1]"), ("a2[1]", "L")}
    assert "Both, chained" in browser.find_element("id", "document").text


def test_html_softmax_output_reaches_the_loss_through_every_output(browser, tmp_path):
    spec = ["--layers", "2,3,3", "--activation", "sigmoid,softmax", "--loss", "cross_entropy"]
    _run("explain", *spec, "--format", "html", "-o", str(tmp_path))
    _open(browser, tmp_path / "net-2-3-3.html")
    _click(browser, "W2[1,1]")
    by_hand = {("a1[1]", "a2[1]"), ("a2[1]", "L"), ("a2[2]", "L"), ("a2[3]", "L")}
    assert _highlighted(browser) == _which_edges(*spec, "W2[1,1]") == by_hand


def test_html_prints_without_the_controls(browser, pages):
    _open(browser, pages["default"])
    _click(browser, "W1[1,1]")
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        hidden = browser.execute_script("return getComputedStyle(document.getElementById('gradients')).display")
        assert hidden == "none"
        assert _highlighted(browser)  # the chosen paths stay on paper
        pdf = browser.execute_cdp_cmd("Page.printToPDF", {"printBackground": True})["data"]
        assert len(pdf) > 10_000
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})


# -- without a browser -----------------------------------------------------------------
def test_which_path_values_add_up_to_the_independent_gradient():
    answer = json.loads(_run("which", str(DEFAULT), "W1[1,1]", "--json"))
    assert len(answer["path_values"]) == 2
    assert sum(answer["path_values"]) == pytest.approx(float(_reference_gradient(1, 1)), rel=1e-12)


def test_html_page_is_one_file(pages):
    text = pages["default"].read_text()
    assert text.startswith("<!DOCTYPE html>")
    for outside in ("<script src", "<link", "<img", "@import", "url(http"):
        assert outside not in text
    assert 'data-param="W1[1,1]"' in text and 'data-from="x[1]" data-to="a1[1]"' in text


def test_html_notation_options_reach_the_page(tmp_path):
    _run("explain", str(DEFAULT), "--format", "html", "--notation", "ij", "--loss-symbol", "C",
         "-o", str(tmp_path))
    text = (tmp_path / "default.html").read_text()
    marker = '<script type="application/json" id="derive-data">'
    start = text.index(marker) + len(marker)
    data = json.loads(text[start:text.index("</script>", start)])["params"]
    # ij notation: W(l)_ij joins i to j, so W1[1,2] (from input 2 to neuron 1) is W_21
    assert data["W1[1,2]"]["lhs"] == r"\frac{\partial C}{\partial W^{(1)}_{21}}"
    assert [f for f in data["W1[1,1]"]["paths"][1]["latex"].split(r" \cdot ") if "W^{(2)}" in f] == [
        r"{\color{#4477AA}{W^{(2)}_{12}}}"]


def test_markdown_to_html_subset():
    md = "# A *b*\n\nText $a < b$ and **bold** half\\_sse.\n\n$$\nx^2 & y\n$$\n\n| h | $k$ |\n|---|---|\n| 1 | 2 |\n"
    assert markdown.to_html(md) == (
        "<h1>A <em>b</em></h1>\n"
        '<p>Text <span class="math">\\(a &lt; b\\)</span> and <strong>bold</strong> half_sse.</p>\n'
        '<div class="display">\\[x^2 &amp; y\\]</div>\n'
        '<div class="table"><table>\n<thead><tr><th>h</th><th><span class="math">\\(k\\)</span></th></tr></thead>\n'
        "<tbody>\n<tr><td>1</td><td>2</td></tr>\n</tbody></table></div>")


def test_markdown_escapes_html_in_text():
    assert markdown.inline("<script>x</script> \\$5") == "&lt;script&gt;x&lt;/script&gt; $5"


def test_html_without_mathjax_is_a_tool_error(tmp_path):
    with pytest.raises(ToolError, match="mathjax-full"):
        html.mathjax_source([tmp_path])


def test_hook_names():
    assert [html.hook(k) for k in ("x1", "a2.3", "L", "gap2-5")] == ["x[1]", "a2[3]", "L", "gap2-5"]


def test_cli_html_format_errors(capsys):
    assert main(["explain", str(DEFAULT), "--format", "html,docx"]) == 2
    assert "expected a comma list of pdf, tex, md, html" in capsys.readouterr().err
    assert main(["explain", str(DEFAULT), "--format", "html", "--snippet"]) == 2
    assert "--snippet" in capsys.readouterr().err
    assert main(["which", str(DEFAULT), "--format", "docx"]) == 2
    assert "expected md, tex or html" in capsys.readouterr().err

"""How fast does the HTML handout open?  Issue #16's target: under 2 s in headless chromium.

For each network the page is written once (`derive explain --format html`,
in this process: the generation time), then opened ROUNDS times in a fresh
tab of one headless chromium.  Times are the page's own clock
(`performance.now()`, milliseconds since navigation started), so WebDriver's
round trips are not counted:

    load       the load event (HTML parsed, inlined MathJax run)
    typeset    MathJax has typeset every formula: the page is readable
    select     one click on W1[1,1] until its paths and chain rule are typeset

The median over rounds is reported; the script exits 1 when a page's
typeset median misses TARGET_MS.

    python benchmarks/bench_html.py [--rounds N] [--write-readme]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from readme_section import write_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from derive.cli import main as derive_main  # noqa: E402

TARGET_MS = 2000
SECTION = "## HTML handout"
NETWORKS = [("default example 2-2-2", [str(ROOT / "derive" / "data" / "default.toml")], "default"),
            ("MNIST 784-30-10", ["--layers", "784,30,10"], "net-784-30-10")]
SELECT = """var done = arguments[0], t0 = performance.now();
document.querySelector('button[data-param="W1[1,1]"]').click();
MathJax.typesetPromise().then(() => done(performance.now() - t0));"""


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def measure(driver, page: Path, rounds: int) -> dict:
    runs = []
    for _ in range(rounds):
        driver.get("about:blank")
        driver.get(page.as_uri())
        typeset = driver.execute_async_script(
            "var done = arguments[0]; MathJax.startup.promise.then(() => done(performance.now()));")
        load = driver.execute_script("return performance.getEntriesByType('navigation')[0].loadEventEnd")
        runs.append((load, typeset, driver.execute_async_script(SELECT)))
    return {k: statistics.median(r[i] for r in runs) for i, k in enumerate(("load", "typeset", "select"))}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--write-readme", action="store_true")
    args = ap.parse_args(argv)
    rows, ok = [], True
    driver = browser()
    try:
        with tempfile.TemporaryDirectory() as out:
            for label, spec, stem in NETWORKS:
                start = time.perf_counter()
                assert derive_main(["explain", *spec, "--format", "html", "-o", out]) == 0
                generate = time.perf_counter() - start
                page = Path(out) / f"{stem}.html"
                t = measure(driver, page, args.rounds)
                ok &= t["typeset"] < TARGET_MS
                rows.append(f"| {label} | {page.stat().st_size / 1e6:.2f} MB | {generate:.1f} s | "
                            f"{t['load']:.0f} ms | {t['typeset']:.0f} ms | {t['select']:.0f} ms |")
    finally:
        driver.quit()
    table = "\n".join([f"Median of {args.rounds} opens in headless chromium (target: typeset < {TARGET_MS} ms).", "",
                       "| page | size | generate | load | typeset | select W1[1,1] |",
                       "|---|---|---|---|---|---|", *rows])
    print(table)
    if args.write_readme:
        write_section(SECTION, table + "\n\nRun: `python benchmarks/bench_html.py --write-readme`.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The status page in a real browser (Debian's Chromium through Playwright), over pages that
real daemons wrote with the local backends.

One browser for the module. With CI=true these tests fail, never skip, when Chromium or
Playwright is missing (``.ci/run`` installs both). Screenshots of the phone and the wall
screen widths are kept in the test's temp dir (printed with -s).
"""

from __future__ import annotations

import os
import shutil
import signal
from datetime import datetime, timezone
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from e2e_helpers import daemon, daemon_run, env_for, make_experiment, wait_for  # noqa: E402

from batchman.core import states as S  # noqa: E402

pytestmark = pytest.mark.slow

PHONE = {"width": 412, "height": 915}
WALL = {"width": 1920, "height": 1080}
EVIL_SCRIPT = "<script>window.pwned=1</script>"
EVIL_IMG = '"><img src=x onerror="window.pwned=2">'
# the job reports two counters a careless page would run as code
EVIL_JOB = r"""
printf '%s\n' '{"t":1,"c":{"note":"<script>window.pwned=1</script>","tag":"\"><img src=x onerror=\"window.pwned=2\">"}}' >> "$BATCHMAN_REPORT_SPOOL"
"""


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if not chromium or sync_playwright is None:
        msg = "the page's browser tests need Debian's chromium and Playwright (.ci/run installs them)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium)
        yield b
        b.close()


def _evil_analysis(root: Path) -> None:
    script = root / "analyze"
    text = script.read_text().replace("sleep \"${SLEEP:-0.3}\"", EVIL_JOB + "sleep \"${SLEEP:-0.3}\"")
    script.write_text(text)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A small production run to its end by a daemon: 10 runs, 2 failing, every job reporting evil counters."""
    root = tmp_path_factory.mktemp("finished")
    e = make_experiment(root, range(1, 11), **{"batch.local_slots": 4, "staging.local_delay": 0.02})
    _evil_analysis(root)
    r = daemon_run(root, "loop", env=env_for(root, FAIL_RUNS="3 7", SLEEP=0.1))
    assert r.returncode == 0, r.stdout
    st = e.store.read()
    assert {t.run for t in st.tasks if t.state == S.FAILED} == {3, 7}
    assert any(t.counters.get("note") == EVIL_SCRIPT for t in st.tasks)
    return root


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """A daemon killed with SIGKILL while jobs run: its last page stays on disk."""
    root = tmp_path_factory.mktemp("killed")
    e = make_experiment(root, range(1, 7), **{"batch.local_slots": 2, "daemon.stale_after": 60})
    p = daemon(root, "loop", env=env_for(root, SLEEP=5))
    try:
        wait_for(lambda: any(t.state == S.RUNNING for t in e.store.read().tasks), timeout=60)
        wait_for(lambda: "<li class='s-running'>" in (root / "status.html").read_text(), timeout=30)
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    return root


def open_page(browser, path: Path, viewport: dict, clock: float | None = None):
    page = browser.new_page(viewport=viewport)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda d: (errors.append("dialog " + d.message), d.dismiss()))
    if clock is not None:
        page.clock.install(time=datetime.fromtimestamp(clock, tz=timezone.utc))
    page.goto(path.as_uri())
    return page, errors


def test_on_a_phone_nothing_scrolls_sideways_and_the_progress_is_in_the_first_screen(browser, finished):
    page, errors = open_page(browser, finished / "status.html", PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for sel in ("#progress", "#bar", "#counts"):
        box = page.locator(sel).bounding_box()
        assert box is not None and box["y"] + box["height"] <= PHONE["height"], sel
    assert page.locator("#counts").inner_text().split() == ["completed", "8", "failed", "2"]
    assert page.locator("#hb").inner_text() == "no daemon running (production finished)"
    assert page.locator("#hb").get_attribute("class") == "calm" and page.locator("#stale").is_hidden()
    page.screenshot(path=str(finished / "page-412.png"), full_page=True)
    wall, _ = open_page(browser, finished / "status.html", WALL)
    assert wall.evaluate("document.documentElement.scrollWidth") <= WALL["width"]
    wall.screenshot(path=str(finished / "page-1920.png"), full_page=True)
    print("screenshots:", finished / "page-412.png", finished / "page-1920.png")
    assert errors == []


def test_what_a_job_reported_is_shown_as_text_and_runs_nothing(browser, finished):
    page, errors = open_page(browser, finished / "status.html", WALL)
    page.locator("details.s-completed summary").click()
    text = page.locator("body").inner_text()
    assert EVIL_SCRIPT in text and EVIL_IMG in text
    assert page.evaluate("window.pwned") is None
    assert page.evaluate("document.scripts.length") == 1 and page.locator("img").count() == 0
    assert errors == []


def test_the_filter_narrows_the_rows_as_you_type(browser, finished):
    page, errors = open_page(browser, finished / "status.html", PHONE)
    visible = "document.querySelectorAll('table.rows tbody tr:not([hidden])').length"
    assert page.evaluate(visible) == 10
    page.locator("#filter").press_sequentially("failed")
    assert page.evaluate(visible) == 2
    rows = page.locator("table.rows tbody tr:not([hidden])")
    assert {rows.nth(i).locator("td").first.inner_text() for i in range(2)} == {"3", "7"}
    assert all("failed" in r for r in rows.all_inner_texts())
    assert page.locator("#shown").inner_text() == "2 row(s) match"
    page.locator("#filter").fill("")
    page.locator("#filter").dispatch_event("input")
    assert page.evaluate(visible) == 10
    assert errors == []


def test_the_page_of_a_killed_daemon_turns_stale_once_older_than_the_limit_and_not_before(browser, killed):
    from playwright.sync_api import expect
    path = killed / "status.html"
    written = float(path.read_text().split("data-written='")[1].split("'")[0])
    page, errors = open_page(browser, path, PHONE, clock=written + 50)
    assert page.locator("#stale").is_hidden()
    assert page.locator("#hb").get_attribute("class") == "ok"
    beat = page.locator("#hb span[data-t]")
    assert beat.inner_text().endswith(" s") and int(beat.inner_text().split()[0]) >= 50   # aged in the browser
    page.clock.fast_forward(15_000)          # 65 s after writing, the limit is 60 s (and reloaded)
    expect(page.locator("#stale")).to_have_text("page not updated for 1 min: is the daemon running?")
    assert page.locator("#stale").is_visible() and page.locator("#hb").get_attribute("class") == "bad"
    assert int(beat.inner_text().split()[0]) >= 65
    assert errors == []


def test_without_scripts_the_page_shows_everything_and_follows_dark_mode(browser, finished):
    page = browser.new_page(viewport=PHONE, java_script_enabled=False, color_scheme="dark")
    page.goto((finished / "status.html").as_uri())
    assert page.locator("#progress").inner_text() == "8 of 10 done (80.0%)"
    assert "page written" in page.locator("header").inner_text()
    assert page.locator("#filter").is_hidden()                  # a filter that cannot work is not offered
    assert page.locator("table.rows tbody tr").first.is_visible()
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(20, 20, 20)"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_on_a_phone_the_per_job_table_keeps_its_words_whole_and_scrolls_in_its_own_box(browser, tmp_path):
    """Six numbers a row do not fit 412 px: 'completed' was broken into 'compl / eted'."""
    from batchman.core.model import Status, Task
    from batchman.page import html as H
    now = 1_800_000_000.0
    tasks = [Task(run=r, job=j, state=st, since=now, meta={"dataset": "Al50-long-dataset-name"})
             for r in range(1, 40) for j, st in (("merge", S.COMPLETED), ("reconstruction", S.RUNNING))]
    (tmp_path / "status.html").write_text(H.page(Status(tasks=tasks), now, 300.0, 60, "exp", None))
    page, errors = open_page(browser, tmp_path / "status.html", PHONE, clock=now)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    heights = page.locator("table.num th, table.num td").evaluate_all("cs => cs.map(c => c.getBoundingClientRect().height)")
    assert len(heights) > 20 and max(heights) < 1.6 * min(heights), heights
    assert page.locator("div.wide").first.evaluate("d => d.scrollWidth > d.clientWidth")    # swiped, not cut
    assert errors == []

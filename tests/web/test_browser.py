"""End to end in a real browser (Debian's chromium, driven by Playwright): open the page, upload a
clip, drag a `happy` edit on the timeline, reenact, wait for the result, check that the output video
plays with the input's duration, and save a screenshot of the finished state (tests/web/out/); on the way,
choose a renderer without a trained model and read the banner that says how to train it."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
CHROMIUM = Path("/usr/bin/chromium")
OUT = Path(__file__).parent / "out"


def _chromium() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("Debian's chromium is missing (the Makefile installs it: apt-get install chromium)")
        pytest.skip("Debian's chromium is not installed (make install-browser)")
    pytest.importorskip("playwright")
    return CHROMIUM


@pytest.fixture
def server(session, tmp_path):
    """A real uvicorn server on a free local port, over the run's shared Session."""
    import uvicorn

    from tests.web.conftest import make_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = make_app(tmp_path / "web", session, warm_preview=True)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    srv.should_exit = True
    th.join(30)


def test_browser_edit_reenact_compare(server, web_clip):
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    OUT.mkdir(exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(executable), args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 860})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server)
            page.set_input_files("#file-input", str(web_clip))
            page.wait_for_function("document.querySelector('#analysis-state').textContent.startsWith('face found')",
                                   timeout=240_000)
            box = page.locator("#timeline").bounding_box()
            lane_y = box["y"] + 125
            x_at = lambda frac: box["x"] + 10 + (box["width"] - 20) * frac  # noqa: E731
            page.mouse.move(x_at(0.2), lane_y)
            page.mouse.down()
            page.mouse.move(x_at(0.5), lane_y, steps=6)
            page.mouse.move(x_at(0.75), lane_y, steps=6)
            page.mouse.up()
            first = page.evaluate("S.edits.map(e => [e.start, e.end])")
            assert len(first) == 1 and first[0][0] == pytest.approx(0.6, abs=0.05) and first[0][1] == pytest.approx(2.25, abs=0.05)
            # move it by dragging its body, undo the move, resize its end; the keyboard steps and plays
            page.mouse.move(x_at(0.45), lane_y)
            page.mouse.down()
            page.mouse.move(x_at(0.5), lane_y, steps=4)
            page.mouse.up()
            moved = page.evaluate("S.edits[0].start")
            assert moved == pytest.approx(first[0][0] + 0.15, abs=0.05)
            page.keyboard.press("Control+z")
            assert page.evaluate("S.edits[0].start") == pytest.approx(first[0][0], abs=1e-6)
            page.mouse.move(x_at(0.75) - 2, lane_y)
            page.mouse.down()
            page.mouse.move(x_at(0.8), lane_y, steps=4)
            page.mouse.up()
            assert page.evaluate("S.edits[0].end") == pytest.approx(2.4, abs=0.05)
            page.keyboard.press("ArrowRight")
            page.wait_for_function("document.querySelector('#frame-no').textContent === 'frame 1'", timeout=10_000)
            page.mouse.click(x_at(0.45), box["y"] + 60)  # playhead into the edit
            page.wait_for_function("document.querySelector('#preview-note').textContent.includes('edit weight')",
                                   timeout=120_000)
            assert page.locator(".label-btn.active").inner_text() == "happy"
            # lip motion: kept by default for this talking speaker, laid on the closed mouth when asked
            page.wait_for_function("document.querySelector('#preview-note').textContent.includes('lips kept')",
                                   timeout=30_000)
            page.select_option("#speech-select", "off")
            page.wait_for_function("!document.querySelector('#preview-note').textContent.includes('lips kept')"
                                   " && document.querySelector('#preview-note').textContent.includes('edit weight')",
                                   timeout=30_000)
            page.select_option("#speech-select", "auto")
            # the renderer control: a renderer this video has no model for says how to train it, then warp again
            page.wait_for_function("document.querySelector('#renderer-select').options[1].textContent.includes('not trained')",
                                   timeout=30_000)
            assert page.evaluate("[...document.querySelector('#renderer-select').options].map(o => o.value)") == [
                "warp", "warp+refine", "neural"]
            page.select_option("#renderer-select", "warp+refine")
            page.wait_for_selector("#banner:not([hidden])", timeout=10_000)
            banner = page.inner_text("#banner-text")
            assert banner.startswith("the warp+refine renderer has no trained model for this video; train it with `dfm renderer train ")
            assert banner.endswith(" --refiner`")
            assert page.input_value("#renderer-select") == "warp" and page.evaluate("S.renderer") == "warp"
            page.screenshot(path=str(OUT / "renderer.png"))
            page.click("#banner-close")
            page.click("#reenact")
            page.wait_for_function("!document.querySelector('#result-box').hidden", timeout=300_000)
            page.wait_for_function("document.querySelector('#output-video').readyState >= 2", timeout=60_000)
            durations = page.evaluate("[document.querySelector('#input-video').duration, document.querySelector('#output-video').duration]")
            assert durations[1] == pytest.approx(durations[0], abs=0.05)
            assert "lip motion kept" in page.inner_text("#result-text")
            page.click("#step-back")  # back into the edit, then play both in sync for a moment
            page.evaluate("document.querySelector('#input-video').currentTime = 1.0")
            page.click("#play")
            page.wait_for_function("document.querySelector('#output-video').currentTime > 1.3", timeout=30_000)
            page.click("#play")
            page.wait_for_timeout(300)
            t_in, t_out, paused = page.evaluate(
                "[document.querySelector('#input-video').currentTime, document.querySelector('#output-video').currentTime,"
                " document.querySelector('#output-video').paused]")
            assert paused and abs(t_in - t_out) < 0.1
            edits = page.evaluate("fetch(location.pathname + 'api/projects/' + location.hash.slice(3) + '/edits').then(r => r.json())")
            assert [e["label"] for e in edits["edits"]] == ["happy"]
            page.screenshot(path=str(OUT / "finished.png"))
        finally:
            browser.close()
    assert errors == []


def test_browser_shows_readable_errors(server, tmp_path):
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    OUT.mkdir(exist_ok=True)
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video\n" * 20)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(executable), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 500})
            page.goto(server)
            page.set_input_files("#file-input", str(fake))
            page.wait_for_selector("#banner:not([hidden])", timeout=30_000)
            assert "notes.mp4: not a video DFM can read" in page.inner_text("#banner-text")
            page.screenshot(path=str(OUT / "error.png"))
        finally:
            browser.close()

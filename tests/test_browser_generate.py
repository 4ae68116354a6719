"""Generating in the visitor's browser, in Chromium: with every server generation request held, Generate
still writes text (the bundled model and a freshly added run), the temperature slider re-samples it with no
generation request, Stop ends a long one at once; without WebAssembly the page goes to the server and says
so; only the browser copies are served."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from app_fixtures import corpus_text, launched, make_checkpoint, wait_for
from browser_fixtures import ARTIFACTS, TIMEOUT_MS, chromium
from playwright.sync_api import expect

from charrnn.runs.store import PROJECT_DIR
from webui.generate.webcopy import INDEX

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def browser():
    yield from chromium()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with launched(tmp_path_factory.mktemp("checkpoints")) as served:
        yield served


@pytest.fixture
def own(tmp_path):
    """An app of the test's own, for tests that add runs (the shared one keeps the bundled model newest)."""
    with launched(tmp_path / "checkpoints") as served:
        yield served


def open_generate(browser, served, init_script=None, viewport=(1300, 1000), theme=""):
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    page.set_default_timeout(TIMEOUT_MS)
    if init_script:
        page.add_init_script(init_script)
    held = []
    page.goto(served.url + theme)
    page.wait_for_selector("#start-btn")
    generate_ids = page.evaluate("window.gradio_config.dependencies.filter(d => d.api_name === 'generate')"
                                 ".map(d => d.id)")
    assert generate_ids

    def hold_generation(route):
        body = route.request.post_data_json or {}
        if body.get("fn_index") in generate_ids:
            held.append(body)
            return route.fulfill(status=200, content_type="application/json", body=json.dumps({"event_id": "held"}))
        return route.continue_()

    page.route("**/gradio_api/queue/join*", hold_generation)
    page.get_by_role("tab", name="Generate").click()
    page.wait_for_selector("#generate-btn")
    expect(page.locator("#checkpoint input")).not_to_have_value("")
    return page, held


def output(page) -> str:
    return page.input_value("#output textarea")


def test_generate_runs_in_the_page_and_the_slider_resamples_with_no_generation_request(browser, served):
    page, held = open_generate(browser, served)
    page.click("#generate-btn")
    expect(page.locator("#gen-where")).to_contain_text("Generated in your browser (WebAssembly)")
    first = output(page)
    assert first.startswith("ROMEO:\n") and len(first) == len("ROMEO:\n") + 500
    slider = page.locator("#temperature input[type=range]").bounding_box()
    y = slider["y"] + slider["height"] / 2
    page.mouse.move(slider["x"] + slider["width"] * 0.4, y)
    page.mouse.down()
    for i in range(1, 6):
        page.mouse.move(slider["x"] + slider["width"] * (0.4 + 0.05 * i), y)
        page.wait_for_timeout(150)
    page.mouse.up()
    expect(page.locator("#gen-where")).to_contain_text("Re-sampled in your browser")
    assert output(page) != first and len(output(page)) == len(first)
    expect(page.locator("#gen-where mark")).to_have_count(1)      # where the new text first differs
    t = float(page.input_value("#temperature input[type=number]"))
    expect(page.locator("#confidence")).to_contain_text(f"Sampled at temperature {t:g}")   # once the slider rests
    page.screenshot(path=str(ARTIFACTS / "browser-generate-resampled.png"), full_page=True)
    assert held == []                                             # no generation ever asked the server
    page.close()


def test_a_freshly_trained_run_generates_in_the_page_too(browser, own, tmp_path):
    """A real run, trained by ``python -m charrnn train`` into the app's folder while the app serves."""
    served = own
    text = tmp_path / "cats.txt"
    text.write_text(corpus_text(), encoding="utf-8")
    root = served.ctx.settings.root
    env = {**os.environ, "PYTHONPATH": str(PROJECT_DIR), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "charrnn", "--checkpoints", str(root), "train", "--data", str(text),
                           "--name", "fresh-run", "--preset", "seed", "--iterations", "40", "--quiet"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    index = served.ctx.settings.browser_dir / INDEX
    page, held = open_generate(browser, served)
    wait_for(lambda: json.loads(index.read_text()).get("fresh-run", {}).get("copy"), what="the run's browser copy")
    expect(page.locator("#checkpoint input")).to_have_value("fresh-run")
    page.fill("#prime textarea", "the cat")
    page.click("#generate-btn")
    expect(page.locator("#gen-where")).to_contain_text("Generated in your browser")
    assert output(page).startswith("the cat") and len(output(page)) > len("the cat") and held == []
    page.close()


def test_stop_ends_a_long_page_generation_at_once(browser, served):
    page, held = open_generate(browser, served)
    page.fill("#length input[type=number]", "5000")
    page.press("#length input[type=number]", "Enter")
    page.click("#generate-btn")
    wait_for(lambda: len(output(page)) > 200, what="the text to start streaming")
    page.click("#gen-stop-btn")
    stopped = len(output(page))
    page.wait_for_timeout(1000)
    assert len(output(page)) - stopped < 400 and len(output(page)) < 5000 and held == []
    page.close()


def test_without_webassembly_the_page_generates_on_the_server_and_says_so(browser, served):
    page, _ = open_generate(browser, served, init_script="delete window.WebAssembly;")
    page.unroute("**/gradio_api/queue/join*")                    # the server must answer here
    page.click("#generate-btn")
    expect(page.locator("#gen-where")).to_contain_text("Generated on the server: this browser cannot run WebAssembly")
    wait_for(lambda: len(output(page)) > len("ROMEO:\n") + 100, what="the server's text")
    page.close()


def test_only_the_browser_copies_are_served(browser, own):
    served = own
    page, _ = open_generate(browser, served)
    settings = served.ctx.settings
    folder = settings.browser_dir
    get = lambda path: page.request.get(f"{served.url}{path}").status      # noqa: E731
    digest = json.loads((folder / INDEX).read_text())["bundled/shakespeare"]["copy"]
    assert get(f"charrnn/copies/{digest}.json") == 200 and get(f"charrnn/copies/{digest}.bin") == 200
    make_checkpoint(settings.root / "secret-run", corpus_text())
    for path in (settings.root / "secret-run" / "model.safetensors", f"{folder}/../secret-run/model.safetensors",
                 PROJECT_DIR / "app.py", settings.bundled / "model.safetensors", folder / f"{digest}.bin"):
        assert get(f"gradio_api/file={path}") in (403, 404), path       # the copies' folder, by path, too
    for name in ("../secret-run/model.safetensors", "..%2Fsecret-run%2Fmodel.safetensors", "index.json/x"):
        assert get(f"charrnn/copies/{name}") == 404, name
    assert str(settings.root) not in page.content()
    page.close()


@pytest.mark.parametrize("theme,viewport", [("", (1300, 1000)), ("?__theme=dark", (1300, 1000)),
                                            ("", (390, 844)), ("?__theme=dark", (390, 844))],
                         ids=["light", "dark", "phone", "phone-dark"])
def test_the_page_generation_reads_in_both_themes_and_on_a_phone(browser, served, theme, viewport):
    page, _ = open_generate(browser, served, viewport=viewport, theme=theme)
    page.click("#generate-btn")
    expect(page.locator("#gen-where")).to_contain_text("Generated in your browser")
    page.fill("#temperature input[type=number]", "1.3")
    page.press("#temperature input[type=number]", "Enter")
    page.screenshot(path=str(ARTIFACTS / f"browser-generate-{'phone' if viewport[0] < 500 else 'desktop'}"
                              f"{'-dark' if theme else ''}.png"), full_page=True)
    page.close()

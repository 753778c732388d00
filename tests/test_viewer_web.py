"""The viewer served: its Gradio API through gradio_client, and the page in a real headless Chromium."""
import glob
import os
import secrets
import tempfile
from pathlib import Path

import pytest
import trimesh
from flax import nnx

from viewer.bench import CHROMIUM, CHROMIUM_ARGS, _browser_cpu, _free_port
from worldgen.model.config import preset
from worldgen.model.store import export_model
from worldgen.model.world_model import WorldModel


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return export_model(WorldModel(preset("tiny"), rngs=nnx.Rngs(0)), tmp_path_factory.mktemp("m") / "tiny")


@pytest.fixture(scope="module")
def server(model_dir):
    from viewer.app import launch
    port = _free_port()
    demo = launch(str(model_dir), port=port, block=False)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def test_api_sessions_are_separate(server, tmp_path):
    from gradio_client import Client, handle_file
    a, b = Client(server, verbose=False), Client(server, verbose=False)
    args = lambda seed: (seed, "snow", 4.0, 1.5, "", 2, None)
    va, _ = a.predict(*args(11), api_name="/new")
    vb, _ = b.predict(*args(12), api_name="/new")
    assert va["source"] == "world 11 (snow)" and vb["source"] == "world 12 (snow)"
    assert va["token"] != vb["token"] and va["dream"] != vb["dream"]
    (tmp_path / "x.png").write_bytes(b"\x89PNG broken")
    view, status = a.predict(11, "snow", 4.0, 1.5, "", 2, handle_file(str(tmp_path / "x.png")), api_name="/image")
    assert "not an image" in status
    glb, _, status = a.predict(api_name="/export_glb")
    assert len(trimesh.load(glb, force="mesh").faces) > 100
    _, status = b.predict(*args(12), api_name="/undo")
    assert "nothing to undo" in status
    view, status = b.predict(5, "snow", 4.0, 1.5, "a flat desert village", 2, None, api_name="/describe")
    assert view["source"] == "world 5 (desert)" and "village: buildings, object density 2" in status
    _, status = b.predict(6, "snow", 4.0, 1.5, "flat mountains", 2, None, api_name="/describe_enter")
    assert "⚠️ 'flat' and 'mountains' both set the terrain height" in status
    view, _ = b.predict(*args(6), api_name="/load")  # the refused description changed nothing
    assert view["source"] == "world 5 (desert)" and view["token"] == vb["token"]
    view, status, ticked = b.predict(True, api_name="/follow")
    assert view["follow"] is True and ticked is True and "player's camera" in status


def test_export_file_names_never_come_from_the_client(server):
    """A client may name its session anything: an export is still written inside the viewer's own folder."""
    from gradio_client import Client
    c = Client(server, verbose=False)
    marker = "x" + secrets.token_hex(4)
    c.session_hash = "../" + marker  # a name built from it would land in the viewer folder's parent
    c.predict(3, "snow", 4.0, 1.5, "", 2, None, api_name="/new")
    glb, _, status = c.predict(api_name="/export_glb")
    assert status.startswith("exported") and marker not in Path(glb).name
    assert not glob.glob(str(Path(tempfile.gettempdir()) / marker) + "*")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _open(browser, url):
    page = browser.new_context(accept_downloads=True).new_page()
    page.goto(url)
    page.wait_for_selector(".wg-player[data-ready='1']", timeout=60_000)
    page.wait_for_function("Number(document.querySelector('.wg-player').dataset.frames) > 0", timeout=60_000)
    return page


def test_browser_play_and_download(server, browser, tmp_path):
    page = _open(browser, server)
    frames = lambda: page.eval_on_selector_all(".wg-views canvas", "es => es.map(e => e.toDataURL())")
    first = frames()
    page.click(".wg-dream")
    page.keyboard.down("w")
    page.wait_for_function("Number(document.querySelector('.wg-player').dataset.step) >= 5", timeout=60_000)
    # The page writes its FPS counter four times a second, from the frames shown in the last second.
    page.wait_for_function("Number(document.querySelector('.wg-player').dataset.fps) > 0", timeout=10_000)
    page.keyboard.up("w")
    assert frames() != first
    # This fresh tiny model's camera moves nothing, so the HUD says the dream stands blocked, until a turn.
    stopped = "document.querySelector('.wg-stopped').textContent"
    page.wait_for_function(f"{stopped}.startsWith('blocked in the dream for ')", timeout=10_000)
    # Ticked, each streamed step also shows what memory knew of each dream pixel; the box keeps the focus, and
    # the keys still walk (a text field would keep them).
    page.check(".wg-memory-on")
    page.keyboard.down("d")
    page.wait_for_function("Number(document.querySelector('.wg-player').dataset.memory) > 0", timeout=60_000)
    page.keyboard.up("d")
    assert page.is_visible(".wg-memory") and "a real frame" in page.inner_text(".wg-memory-key")
    page.wait_for_function(f"{stopped} === ''", timeout=10_000)
    page.keyboard.down("ArrowDown")  # would scroll this long page if the app let it
    page.wait_for_function("Number(document.querySelector('.wg-player').dataset.step) >= 8", timeout=60_000)
    page.keyboard.up("ArrowDown")
    assert page.evaluate("window.scrollY") == 0
    # Following the player, the dream takes the engine's camera: this model's still camera head is not asked.
    page.check("#follow input")
    page.wait_for_function("document.querySelector('.wg-source').textContent.endsWith('following the player')",
                           timeout=30_000)
    page.click(".wg-dream")
    page.keyboard.down("w")
    page.wait_for_function("Number(document.querySelector('.wg-player').dataset.step) >= 12", timeout=60_000)
    page.keyboard.up("w")
    assert page.evaluate(stopped) == ""
    page.click("#export-glb")
    link = page.wait_for_selector("#glb-file a[download]", timeout=60_000)
    with page.expect_download() as download:
        link.click()
    path = tmp_path / "scene.glb"
    download.value.save_as(path)
    assert len(trimesh.load(path, force="mesh").faces) > 100


def test_two_browser_contexts_get_different_worlds(server, browser):
    a, b = _open(browser, server), _open(browser, server)
    source = lambda p: p.inner_text(".wg-source")
    assert source(a).startswith("world ") and source(a) != source(b)
    a.click(".wg-hud")
    a.keyboard.down("w")
    a.wait_for_function("Number(document.querySelector('.wg-player').dataset.step) >= 3", timeout=60_000)
    a.keyboard.up("w")
    assert b.eval_on_selector(".wg-player", "e => e.dataset.step") == "0"
    box = b.wait_for_selector("#describe textarea, #describe input")
    box.type("snowy hills with a forest")  # keystrokes: its w, s, a, d and e must not walk
    assert b.eval_on_selector(".wg-player", "e => e.dataset.step") == "0" and "(snow)" not in source(b)
    box.press("Enter")
    b.wait_for_function("document.querySelector('.wg-source').innerText.includes('(snow)')", timeout=60_000)
    assert "snowy: biome snow" in b.inner_text("#status") and source(a) != source(b)


def test_the_viewer_bench_counts_the_cpu_of_the_chromium_processes_this_process_started(browser):
    """`worldgen bench viewer` splits a frame's CPU between the server and the browser (viewer/bench.py)."""
    before = _browser_cpu()
    assert before and os.getpid() not in before
    page = browser.new_page()
    page.evaluate("() => { const t = performance.now(); while (performance.now() - t < 400) {} }")  # busy renderer
    after = _browser_cpu()
    page.close()
    names = [Path(f"/proc/{pid}/comm").read_text() for pid in after if Path(f"/proc/{pid}").exists()]
    assert names and all(name.startswith("chrom") for name in names)
    assert sum(after.values()) - sum(before.values()) >= 0.3

"""`worldgen bench viewer`: frames/s of the viewer measured in a real headless Chromium.

It serves the app with the given model, opens the page, holds the W key for `seconds`, and reads the
FPS counter the page itself computes (frames shown in the last second), plus the step count. In the same
run it times the model's own step (`Generator.step`, batch 1, as `worldgen bench generate` does) before and
after, and prints the ratio: the viewer's target is at least 90% of the model's rate.
"""
from __future__ import annotations

import socket
import time

from worldgen.benchmarks import peak_memory_row, step_seconds, table

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_viewer(model: str = "bundled", seconds: float = 10.0, screenshot: str | None = None) -> str:
    from playwright.sync_api import sync_playwright

    from viewer.app import launch
    from worldgen.model.runner import Generator
    from worldgen.model.store import load_model
    gen = Generator(load_model(model))
    model_before = 1.0 / step_seconds(gen, 1, 60)[0]
    port = _free_port()
    demo = launch(model, port=port, block=False)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector(".wg-player[data-ready='1']", timeout=120_000)
            page.wait_for_function("Number(document.querySelector('.wg-player').dataset.frames) > 0", timeout=120_000)
            page.click(".wg-hud")
            page.keyboard.down("w")
            time.sleep(1.0)  # let the loop settle
            if screenshot:  # early in the walk: long walks drift (see docs/model.md)
                page.screenshot(path=screenshot)
            start_step, t0 = int(page.eval_on_selector(".wg-player", "e => e.dataset.step")), time.time()
            samples = []
            while time.time() - t0 < seconds:
                time.sleep(0.5)
                samples.append(float(page.eval_on_selector(".wg-player", "e => e.dataset.fps")))
            steps = int(page.eval_on_selector(".wg-player", "e => e.dataset.step")) - start_step
            elapsed = time.time() - t0
            page.keyboard.up("w")
            browser.close()
    finally:
        demo.close()
    model_rate = 0.5 * (model_before + 1.0 / step_seconds(gen, 1, 60)[0])
    browser = sorted(samples)[len(samples) // 2]
    return table([("model step, batch 1 (mean of before and after)", f"{model_rate:.1f} frames/s"),
                  ("browser FPS counter (median)", f"{browser:.1f} frames/s"),
                  ("steps / wall time", f"{steps / elapsed:.1f} frames/s over {elapsed:.0f} s"),
                  ("browser / model", f"{browser / model_rate:.0%} (target: at least 90%)"),
                  peak_memory_row()])

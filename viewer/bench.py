"""`worldgen bench viewer`: frames/s of the viewer measured in a real headless Chromium.

It serves the app with the given model, opens the page, holds the W key for `seconds`, and reads the
FPS counter the page itself computes (frames shown in the last second), plus the step count. In the same
run it times the model's own step (`Generator.step`, batch 1, as `worldgen bench generate` does) before and
after, and prints the ratio: the viewer's target is at least 90% of the model's rate.

Where /proc is readable (Linux) it also counts the CPU time that each frame shown cost, in this process (the
server: the model, the truth's render, the stream) and in Chromium's processes, and the CPU time of a model step
alone: the machine's cores divided by the cost of a frame is the most frames/s the browser could get if every
core were busy every moment, whatever the viewer did to overlap its work. On a 2-core machine the model alone
keeps both cores busy (docs/model.md, session 29), so what the browser itself costs a frame caps the ratio.
"""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from worldgen.benchmarks import cpu_seconds, peak_memory_row, step_seconds, table

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _browser_cpu() -> dict[int, float] | None:
    """CPU seconds of each Chromium process this process started (through Playwright's driver), by pid; None
    where /proc cannot be read."""
    try:
        tick = os.sysconf("SC_CLK_TCK")
        stats = {}
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    text = (d / "stat").read_text()
                except OSError:  # the process ended meanwhile
                    continue
                name, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
                stats[int(d.name)] = (name, int(rest[1]), (int(rest[11]) + int(rest[12])) / tick)
    except (OSError, ValueError):
        return None
    ours, grew = {os.getpid()}, True
    while grew:  # descendants of this process
        new = {pid for pid, (_, parent, _) in stats.items() if parent in ours} - ours
        ours |= new
        grew = bool(new)
    return {pid: stats[pid][2] for pid in ours if stats[pid][0].startswith("chrom")}


def bench_viewer(model: str = "bundled", seconds: float = 10.0, screenshot: str | None = None,
                 follow: bool = False) -> str:
    """The table; `follow`: tick "follow the player" first (the dream drawn at the engine's camera)."""
    from playwright.sync_api import sync_playwright

    from viewer.app import launch
    from worldgen.model.runner import Generator
    from worldgen.model.store import load_model
    gen = Generator(load_model(model))
    before = step_seconds(gen, 1, 60)
    port = _free_port()
    demo = launch(model, port=port, block=False)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector(".wg-player[data-ready='1']", timeout=120_000)
            page.wait_for_function("Number(document.querySelector('.wg-player').dataset.frames) > 0", timeout=120_000)
            if follow:
                page.check("#follow input")
                page.wait_for_function("document.querySelector('.wg-source').textContent.endsWith('following the "
                                       "player')", timeout=60_000)
            page.click(".wg-hud")
            page.keyboard.down("w")
            time.sleep(1.0)  # let the loop settle
            if screenshot:  # early in the walk: long walks drift (see docs/model.md)
                page.screenshot(path=screenshot)
            start_step, t0 = int(page.eval_on_selector(".wg-player", "e => e.dataset.step")), time.time()
            own0, browser0 = cpu_seconds(), _browser_cpu()
            samples = []
            while time.time() - t0 < seconds:
                time.sleep(0.5)
                samples.append(float(page.eval_on_selector(".wg-player", "e => e.dataset.fps")))
            steps = int(page.eval_on_selector(".wg-player", "e => e.dataset.step")) - start_step
            elapsed = time.time() - t0
            own, browser1 = cpu_seconds() - own0, _browser_cpu()
            page.keyboard.up("w")
            browser.close()
    finally:
        demo.close()
    after = step_seconds(gen, 1, 60)
    model_rate = 0.5 * (1.0 / before.seconds + 1.0 / after.seconds)
    model_cpu = 0.5 * (before.cpu_seconds + after.cpu_seconds)
    browser = sorted(samples)[len(samples) // 2]
    rows = [("the dream's camera", "the player's (follow the player)" if follow else "its own camera head's"),
            ("model step, batch 1 (mean of before and after)", f"{model_rate:.1f} frames/s"),
            ("browser FPS counter (median)", f"{browser:.1f} frames/s"),
            ("steps / wall time", f"{steps / elapsed:.1f} frames/s over {elapsed:.0f} s"),
            ("browser / model", f"{browser / model_rate:.0%} (target: at least 90%)")]
    if steps and browser0 is not None and browser1 is not None:
        chromium = sum(t - browser0.get(pid, 0.0) for pid, t in browser1.items())
        per_frame = 1000 * (own + chromium) / steps
        cores = len(os.sched_getaffinity(0))
        cap = 1000 * cores / per_frame
        rows += [("CPU per model step alone (mean of before and after)", f"{1000 * model_cpu:.1f} core-ms"),
                 ("CPU per frame shown: server", f"{1000 * own / steps:.1f} core-ms (model, truth, stream)"),
                 ("CPU per frame shown: Chromium", f"{1000 * chromium / steps:.1f} core-ms"),
                 (f"most frames/s {cores} cores allow at that cost", f"{cap:.1f} frames/s "
                  f"({cap / model_rate:.0%} of the model)")]
    return table(rows + [peak_memory_row()])

"""The package works installed, not only from a checkout: a wheel carries the bundled model."""
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PLAY = """
import numpy as np, jax, worldgen, worldgen_assets
from worldgen.model.runner import Generator
from worldgen.model.store import BUNDLED, load_model
assert worldgen.__file__.startswith(SITE) and str(BUNDLED).startswith(SITE), (worldgen.__file__, BUNDLED)
gen = Generator(load_model("bundled"))
k, r = gen.config.context, gen.config.resolution
state = gen.init(np.zeros((1, k, r, r, 3), np.uint8), np.full((1, k, r, r), 5.0, np.float32),
                 np.broadcast_to(np.eye(4, dtype=np.float32), (1, k, 4, 4)))
state, out = gen.step(state, np.ones(1, np.int32), jax.random.key(0))
print("played", out["rgb"].shape)
"""


def test_a_wheel_installed_apart_from_the_checkout_plays_the_bundled_model(tmp_path):
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run(pip + ["wheel", str(ROOT), "--no-deps", "-w", str(tmp_path / "wheel")], check=True,
                   cwd=tmp_path)
    wheel = next((tmp_path / "wheel").glob("worldgen-*.whl"))
    site = tmp_path / "site"
    subprocess.run(pip + ["install", "--no-deps", "--target", str(site), str(wheel)], check=True, cwd=tmp_path)
    # -S: no site hooks, so the checkout's editable install is out of reach; dependencies come from purelib.
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{sysconfig.get_paths()['purelib']}"}
    run = subprocess.run([sys.executable, "-S", "-c", f"SITE = {str(site)!r}\n" + PLAY], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "played (1, 64, 64, 3)" in run.stdout

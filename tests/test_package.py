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


CACHE = """
import sys
if sys.argv[1] == "jax first":
    import jax
from worldgen.cli import use_compile_cache
print(use_compile_cache())
import jax, jax.numpy as jnp
jax.jit(lambda x: jnp.tanh(x) * 2)(jnp.ones(8)).block_until_ready()
print(jax.config.jax_compilation_cache_dir)
"""


def _with_cache_env(tmp_path, order, **env):
    clean = {k: v for k, v in os.environ.items()
             if k not in ("JAX_COMPILATION_CACHE_DIR", "WORLDGEN_COMPILE_CACHE", "XDG_CACHE_HOME")}
    clean.update(HOME=str(tmp_path / "home"), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", **env)
    run = subprocess.run([sys.executable, "-c", CACHE, order], env=clean, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout.split()


def test_the_cli_keeps_what_jax_compiles_where_it_is_told(tmp_path, monkeypatch, capsys):
    from worldgen.cli import main
    default = tmp_path / "home" / ".cache" / "worldgen" / "jax"
    for order in ("jax first", "worldgen first"):  # the CLI's path, and main() called from Python
        assert _with_cache_env(tmp_path, order) == [str(default)] * 2
        assert any(default.glob("*-cache")), "nothing was written to the cache"
    named = tmp_path / "named"
    assert _with_cache_env(tmp_path, "worldgen first", WORLDGEN_COMPILE_CACHE=str(named)) == [str(named)] * 2
    assert any(named.glob("*-cache"))
    own = tmp_path / "jax-own"
    assert _with_cache_env(tmp_path, "worldgen first", JAX_COMPILATION_CACHE_DIR=str(own)) == ["None", str(own)]
    (tmp_path / "home").rename(tmp_path / "old-home")
    assert _with_cache_env(tmp_path, "worldgen first", WORLDGEN_COMPILE_CACHE="off") == ["None", "None"]
    assert not (tmp_path / "home").exists()
    # A named folder that cannot be made is a clear error before any work; nothing is made.
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("WORLDGEN_COMPILE_CACHE", str(tmp_path / "file" / "jax"))
    assert main(["inspect", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert f"WORLDGEN_COMPILE_CACHE={tmp_path / 'file' / 'jax'}: cannot make that folder" in err
    assert len(err.splitlines()) == 1 and "JAX_COMPILATION_CACHE_DIR" not in os.environ


def test_every_bench_script_runs_as_the_readme_says():
    """`python bench/X.py --help` for each script: run so, bench/ is the first folder on sys.path, and a script
    named like one of our packages (bench/viewer.py did, until session 43) hides that package from every import."""
    for script in sorted((ROOT / "bench").glob("*.py")):
        run = subprocess.run([sys.executable, str(script), "--help"], cwd=ROOT, capture_output=True, text=True,
                             timeout=300)
        assert run.returncode == 0, (script.name, run.stderr[-2000:])
        assert run.stdout.startswith("usage:"), (script.name, run.stdout[:200])

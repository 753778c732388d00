import atexit
import os
import shutil
import tempfile

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

# Compiling is most of this suite's time, and many tests compile the same small programs: in this process
# (each test builds its own model and jitted step) and in the CLI subprocesses they start, which inherit the
# environment. One JAX compilation cache per test session serves them all; a run never reads another run's
# cache (a JAX_COMPILATION_CACHE_DIR already set is used as it is).
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="worldgen-tests-jax-")
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

import gradio  # noqa: E402,F401  (see below)
import pytest  # noqa: E402

# gradio writes its component stubs with ast.parse on first import. Once, deep inside the viewer's server
# fixture, CPython 3.11.7 failed that with "SystemError: AST constructor recursion depth mismatch" (a CPython
# bug, not ours), so the import happens here, at collection time, on a shallow stack.

from worldgen.record import record  # noqa: E402


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """Worlds 0..3 (world 0 held out), 2 episodes of 12 steps at 32x32: a real recorded dataset."""
    out = tmp_path_factory.mktemp("data")
    record(range(0, 4), 2, 12, 32, out, progress=False)
    return out


@pytest.fixture(scope="session")
def rollout_dataset(tmp_path_factory):
    """Worlds 0..2 with 2 episodes of 36 steps at 32x32: long enough for context 2 + horizon 32."""
    out = tmp_path_factory.mktemp("rollout_data")
    record(range(0, 3), 2, 36, 32, out, progress=False)
    return out


@pytest.fixture(scope="session")
def rollout_start(rollout_dataset):
    """(dataset, its first training episode, Generator.init arguments from that episode's first frames for a
    model of the tiny preset's context)."""
    import numpy as np

    from worldgen.dataset import EpisodeDataset
    from worldgen.model.config import preset
    data = EpisodeDataset(rollout_dataset, "train")
    ep, k = data.episode(0), preset("tiny").context
    args = (ep["frames"][None, :k], ep["depth"][None, :k].astype(np.float32), ep["poses"][None, :k], data.intrinsics)
    return data, ep, args


@pytest.fixture(scope="session")
def tiny_model():
    from flax import nnx

    from worldgen.model.config import preset
    from worldgen.model.world_model import WorldModel
    return WorldModel(preset("tiny"), rngs=nnx.Rngs(0))


@pytest.fixture(scope="session")
def random_tiny_model():
    """A tiny model whose weights are random and non-zero everywhere: the U-Net head and the FiLM layers
    of a fresh model start at zero, which would hide a leak from a causality test."""
    import jax
    from flax import nnx

    from worldgen.model.config import preset
    from worldgen.model.world_model import WorldModel
    graphdef, params, rest = nnx.split(WorldModel(preset("tiny"), rngs=nnx.Rngs(0)), nnx.Param, ...)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(1), len(leaves))
    leaves = [x + 0.2 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)]
    return nnx.merge(graphdef, jax.tree.unflatten(tree, leaves), rest)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, random_tiny_model):
    """random_tiny_model exported as a model folder."""
    from worldgen.model.store import export_model
    return export_model(random_tiny_model, tmp_path_factory.mktemp("wm") / "model")

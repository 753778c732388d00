import os

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import pytest  # noqa: E402

from worldgen.record import record  # noqa: E402


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """Worlds 0..3 (world 0 held out), 2 episodes of 12 steps at 32x32: a real recorded dataset."""
    out = tmp_path_factory.mktemp("data")
    record(range(0, 4), 2, 12, 32, out, progress=False)
    return out

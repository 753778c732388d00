"""kill -9 during `record` and during `train`, then the same command again: the data and the loss sequence
equal an uninterrupted run's."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

from worldgen.dataset import read_shard, shard_paths

RECORD = ["record", "--seeds", "0:4", "--episodes-per-world", "2", "--steps", "10", "--resolution", "32",
          "--workers", "2"]
TRAIN = ["--preset", "tiny", "--steps", "8", "--batch-size", "2", "--eval-episodes", "0", "--warmup", "1",
         "--checkpoint-every", "2"]


def _start(args):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.Popen([sys.executable, "-m", "worldgen.cli", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _kill_when(proc, ready, timeout=240.0):
    """SIGKILL `proc` as soon as ready() holds (or let it finish first)."""
    t0 = time.monotonic()
    while proc.poll() is None and time.monotonic() - t0 < timeout:
        if ready():
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()


def test_record_killed_twice_resumes_to_the_same_data(tmp_path):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert _start(RECORD + ["--out", str(whole), "--workers", "1"]).wait() == 0  # one process; the killed runs use two
    for shards in (1, 3):  # kill once a shard is written, then again later
        _kill_when(_start(RECORD + ["--out", str(cut)]), lambda: len(list(cut.glob("shard-*.npz"))) >= shards)
    assert _start(RECORD + ["--out", str(cut)]).wait() == 0
    a, b = shard_paths(whole), shard_paths(cut)
    assert [p.name for p in a] == [p.name for p in b] and not list(cut.glob(".shard-*"))
    for pa, pb in zip(a, b):
        sa, sb = read_shard(pa), read_shard(pb)
        for k in sa.arrays:
            np.testing.assert_array_equal(sa.arrays[k], sb.arrays[k])


def _losses(workdir):
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r]


def test_train_killed_twice_resumes_to_the_same_losses(tiny_dataset, tmp_path):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    data = ["train", "--data", str(tiny_dataset)]
    uninterrupted = _start(data + ["--workdir", str(whole)] + TRAIN)  # runs beside the killed ones

    def logged(n):
        path = cut / "metrics.jsonl"
        return lambda: path.exists() and len(path.read_text().splitlines()) >= n

    _kill_when(_start(data + ["--workdir", str(cut)] + TRAIN), logged(3))  # between checkpoints
    _kill_when(_start(data + ["--workdir", str(cut), "--resume"] + TRAIN),
               lambda: any(p.name.startswith("6") for p in (cut / "checkpoints").iterdir())
               or logged(7)())  # while the step-6 checkpoint is being written
    assert _start(data + ["--workdir", str(cut), "--resume"] + TRAIN).wait() == 0
    assert uninterrupted.wait() == 0
    np.testing.assert_allclose(_losses(cut), _losses(whole), rtol=1e-5)
    assert len(_losses(cut)) == 8

"""Training on two processes (jax.distributed on 127.0.0.1, each with its own CPU device) through the one
`fit` loop equals one process on the same global batch, and the pair's checkpoint resumes on one process."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

COMMON = ["--preset", "tiny", "--steps", "5", "--batch-size", "4", "--eval-episodes", "0", "--warmup", "1",
          "--checkpoint-every", "3"]


def _train(args, env_extra, tmp_path, name):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    env.update(env_extra)
    log = open(tmp_path / f"{name}.log", "w")
    return subprocess.Popen([sys.executable, "-m", "worldgen.cli", "train", *args], env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def _losses(workdir):
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_like_one_and_resume_on_one(tiny_dataset, tmp_path):
    data = ["--data", str(tiny_dataset)]
    pair, single = tmp_path / "pair", tmp_path / "single"
    coord = {"JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{_port()}", "JAX_NUM_PROCESSES": "2"}
    procs = [_train([*data, "--workdir", str(pair), "--distributed", "--stop-after", "3", *COMMON],
                    dict(coord, JAX_PROCESS_ID=str(i)), tmp_path, f"p{i}") for i in range(2)]
    two_devices = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    procs.append(_train([*data, "--workdir", str(single), *COMMON], two_devices, tmp_path, "single"))
    for p in procs:
        assert p.wait(timeout=500) == 0, (tmp_path / "p0.log").read_text()[-3000:]
    assert sorted(_losses(pair)) == [0, 1, 2] and sorted(_losses(single)) == [0, 1, 2, 3, 4]
    # The pair's step-3 checkpoint, resumed by one process with one device.
    resumed = _train([*data, "--workdir", str(pair), "--resume", *COMMON], {}, tmp_path, "resumed")
    assert resumed.wait(timeout=500) == 0, (tmp_path / "resumed.log").read_text()[-3000:]
    got, want = _losses(pair), _losses(single)
    assert sorted(got) == [0, 1, 2, 3, 4]
    np.testing.assert_allclose([got[i] for i in range(5)], [want[i] for i in range(5)], rtol=1e-4)


def test_a_process_reads_only_its_rows(tiny_dataset):
    from worldgen.dataset import EpisodeDataset
    from worldgen.errors import WorldgenError
    d = EpisodeDataset(tiny_dataset, "train")
    full = d.windows(6, 5, seed=1, step=7)
    part = d.windows(6, 5, seed=1, step=7, rows=slice(3, 6))
    for k in full:
        np.testing.assert_array_equal(part[k], full[k][3:6])
    with pytest.raises(WorldgenError, match="window length 99"):
        d.windows(6, 99, seed=1, step=7, rows=slice(0, 3))

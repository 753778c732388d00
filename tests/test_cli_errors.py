"""Bad input on the command line: each case exits non-zero with one line naming the problem, no traceback,
and leaves what is already saved as it was."""
import json

import numpy as np
import pytest

from worldgen.cli import main


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "folder.png").mkdir()
    frames = d / "frames"
    frames.mkdir()
    from PIL import Image
    for i in range(4):
        Image.new("RGB", (40, 30), (i, 0, 0)).save(frames / f"{i:05d}.png")
    (d / "huge.txt").write_text("0\n1\n2\n99999999999999999999\n")
    (d / "many.txt").write_text("0\n1\n2\n5000000\n")
    (d / "list.json").write_text("[1, 2]")
    (d / "rough.json").write_text('{"roughness": "abc"}')
    (d / "binary.json").write_bytes(b"\xff\xfe\x00")
    shards = d / "shards"
    shards.mkdir()
    meta = np.frombuffer(json.dumps({"source": "x"}).encode(), np.uint8)
    common = dict(meta=meta, frames=np.zeros((1, 2, 8, 8, 3), np.uint8), actions=np.zeros((1, 2), np.int32),
                  seeds=np.zeros(1, np.int64), episode_ids=np.zeros(1, np.int64))
    np.savez(shards / "shard-seed00000001.npz", format_version=np.array([1, 2]), **common)
    strings = d / "strings"
    strings.mkdir()
    np.savez(strings / "shard-seed00000001.npz", format_version=np.array("1"), **common)
    return d


CASES = [
    (["view", "--sky-color", "red,green,blue"], "--sky-color expects numbers"),
    (["demo", "--steps", "0", "--out", "{d}/demo.gif"], "demo steps = 0: expected 1..10000"),
    (["view", "--out", "{d}/folder.png"], "it is a folder"),
    (["view", "--out", "{d}/missing/v.png"], "does not exist"),
    (["train", "--data", "{d}/shards", "--workdir", "/proc/worldgen-x"], "cannot create output folder"),
    (["eval", "--data", "{d}/shards", "--out", "/proc/worldgen-x"], "cannot create output folder"),
    (["bench", "render", "--model", "bundled"], "takes no --model"),
    (["import", "--frames", "{d}/frames", "--actions", "{d}/huge.txt", "--out", "{d}/imp"], "outside 0..255"),
    (["import", "--frames", "{d}/frames", "--actions", "{d}/many.txt", "--out", "{d}/imp"], "outside 0..255"),
    (["inspect", "{d}/shards"], "format_version must be one integer"),
    (["inspect", "{d}/strings"], "format_version must be one integer"),
    (["view", "--biome", "lava"], "unknown biome 'lava'"),
    (["view", "--spec", "{d}/missing.json"], "--spec {d}/missing.json: no such file"),
    (["export", "--seed", "1", "--out", "{d}/x.glb", "--spec", "{d}/frames"], "--spec {d}/frames: it is a folder"),
    (["view", "--spec", "{d}/list.json"], "world spec JSON must be an object of field: value"),
    (["view", "--spec", "{d}/huge.txt"], "world spec is not valid JSON"),
    (["record", "--seeds", "0:1", "--out", "{d}/rec", "--spec", "{d}/rough.json"],
     "--spec {d}/rough.json: WorldSpec.roughness must be a finite number, got 'abc'"),
    (["view", "--spec", "{d}/binary.json"], "not a text file"),
    (["describe", "flat", "mountains"], "'flat' and 'mountains' both set the terrain height"),
    (["describe", "snowy", "hills", "--out", "{d}/folder.png"], "it is a folder"),
    (["view", "--describe", "hello there", "--out", "{d}/v.png"], "no word in 'hello there' is one worldgen knows"),
    (["record", "--seeds", "0:2", "--out", "{d}/rec", "--workers", "0"], "--workers 0: expected 1 to 256 processes"),
    (["view", "--world-size", "-5"], "WorldSpec.world_size = -5.0 is out of range"),
    (["view", "--seed", "-3"], "world seed must be an integer in 0..2**63-1, got -3"),
    (["train", "--data", "{d}/missing", "--workdir", "{d}/w"], "data folder {d}/missing does not exist"),
    (["train", "--data", "{d}/frames", "--workdir", "{d}/w"], "holds no shards"),
    (["train", "--data", "{d}/shards", "--workdir", "{d}/w", "--stage", "sky"],
     "unknown training stage 'sky': expected one of all, pose, colour"),
    (["train", "--data", "{d}/shards", "--workdir", "{d}/w", "--deepen", "96"],
     "--deepen grows the colour network of a trained model: pass --init MODEL_DIR"),
    (["eval", "--model", "{d}/frames", "--data", "{d}/shards", "--out", "{d}/ev"], "is not a worldgen model folder"),
    (["play", "--model", "{d}/frames"], "is not a worldgen model folder"),
    (["eval", "--data", "{d}/shards", "--out", "{d}/ev", "--sample-temperature", "5"],
     "ModelConfig.sample_temperature = 5.0: expected 0..2"),
    (["eval", "--data", "{d}/shards", "--out", "{d}/ev", "--transient-near", "nan"],
     "ModelConfig.transient_near = nan: expected 0..100 metres"),
    (["eval", "--data", "{d}/shards", "--out", "{d}/ev", "--palette-prior", "2"],
     "ModelConfig.palette_prior = 2.0: expected 0..0.5"),
    (["eval", "--data", "{d}/shards", "--out", "{d}/ev", "--palette-reach", "-1"],
     "ModelConfig.palette_reach = -1.0: expected 0..3.5"),
    (["eval", "--data", "{d}/shards", "--out", "{d}/ev", "--sample-steps", "0"],
     "ModelConfig.sample_steps = 0: expected 1..16"),
    (["export", "--seed", "1", "--out", "{d}/x.stl"], "unknown export format 'stl'"),
    (["import", "--frames", "{d}/missing", "--actions", "{d}/huge.txt", "--out", "{d}/imp"], "does not exist"),
    (["export-checkpoint", "--workdir", "{d}/frames", "--out", "{d}/m"], "has no checkpoints"),
    (["agent", "train", "--env", "dream", "--workdir", "{d}/agent", "--updates", "1"], "pass --data"),
    (["agent", "train", "--env", "engine", "--workdir", "{d}/agent", "--num-envs", "3", "--rollout-steps", "3"],
     "do not split into 4 minibatches"),
    (["agent", "eval", "--policy", "{d}/frames", "--out", "{d}/agent"], "is not a worldgen model folder"),
    (["agent", "eval", "--policy", "random", "--out", "{d}/agent", "--episodes", "0"], "episodes = 0"),
    (["agent", "eval", "--policy", "random", "--out", "{d}/agent", "--goal-steps", "0"], "TaskConfig.goal_steps = 0"),
]


@pytest.mark.parametrize("argv,message", CASES, ids=[" ".join(c[0][:2]) + f" #{i}" for i, c in enumerate(CASES)])
def test_bad_input_is_one_clear_line(bad, capsys, argv, message):
    assert main([a.format(d=bad) for a in argv]) != 0
    err = capsys.readouterr().err.strip()
    assert message.format(d=bad) in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (bad / "imp").exists() or not any((bad / "imp").iterdir())

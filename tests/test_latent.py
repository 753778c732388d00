"""The JEPA-style latent world model, its planner, and goal reaching in the engine."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from worldgen.cli import main
from worldgen.dataset import EpisodeDataset
from worldgen.errors import WorldgenError
from worldgen.latent import load_latent
from worldgen.planner import LatentPlanner, PlanConfig, cem


@pytest.fixture(scope="module")
def latent_run(tiny_dataset, tmp_path_factory):
    work = tmp_path_factory.mktemp("latent")
    assert main(["latent", "train", "--data", str(tiny_dataset), "--workdir", str(work), "--preset", "tiny",
                 "--steps", "200", "--batch-size", "16", "--warmup", "10", "--lr", "3e-3", "--horizon", "3"]) == 0
    return work


def test_the_loss_falls_and_the_latent_does_not_collapse(latent_run, tiny_dataset, capsys):
    logged = [json.loads(line) for line in (latent_run / "metrics.jsonl").read_text().splitlines()]
    assert len(logged) == 200
    first, last = np.mean([r["loss"] for r in logged[:5]]), np.mean([r["loss"] for r in logged[-5:]])
    assert last < 0.8 * first, (first, last)
    assert logged[-1]["z_std"] > 0.3 and logged[-1]["idm_acc"] > 1 / 7
    capsys.readouterr()
    assert main(["latent", "probe", "--model", str(latent_run), "--data", str(tiny_dataset), "--pairs", "200"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["latent"] == 32 and report["dims_below_0.01"] < 32 and report["latent_std_mean"] > 0.1
    assert np.isfinite(report["move_rmse_m"]) and np.isfinite(report["yaw_rmse_deg"])


def test_an_ema_target_follows_the_model_is_not_trained_and_is_not_exported(tiny_dataset, tmp_path, capsys):
    from flax import nnx

    from training.latent import EmaTarget, WithTarget
    from worldgen.latent import LATENT_PRESETS, LatentModel
    pair = WithTarget(LatentModel(LATENT_PRESETS["tiny"], rngs=nnx.Rngs(0)))
    assert not nnx.state(pair.target, nnx.Param)  # nothing of the target is a trained weight
    before = np.asarray(pair.target.to_latent.kernel[...])
    pair.model.to_latent.kernel[...] = pair.model.to_latent.kernel[...] + 1.0
    pair.follow(0.75)
    np.testing.assert_allclose(pair.target.to_latent.kernel[...], before + 0.25, rtol=0, atol=1e-6)
    assert isinstance(pair.target.to_latent.kernel, EmaTarget)
    work = tmp_path / "ema"
    assert main(["latent", "train", "--data", str(tiny_dataset), "--workdir", str(work), "--preset", "tiny",
                 "--steps", "60", "--batch-size", "16", "--warmup", "5", "--lr", "3e-3", "--horizon", "3",
                 "--ema", "0.9", "--var-weight", "0", "--cov-weight", "0"]) == 0
    logged = [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
    assert np.mean([r["loss"] for r in logged[-5:]]) < 0.8 * np.mean([r["loss"] for r in logged[:5]])
    assert logged[-1]["z_std"] > 0.01  # the targets move with the model: the latent has not collapsed to a point
    assert json.loads((work / "train_summary.json").read_text())["loss"]["ema"] == 0.9
    assert isinstance(load_latent(work), LatentModel)  # the exported model is the online one, loadable as ever
    # Resuming the run without its target encoder is a named mismatch, and its checkpoints stay as they are.
    saved = sorted(p.name for p in (work / "checkpoints").iterdir())
    assert main(["latent", "train", "--data", str(tiny_dataset), "--workdir", str(work), "--preset", "tiny",
                 "--steps", "70", "--batch-size", "16", "--horizon", "3", "--resume"]) == 2
    assert "ema_target: saved True, expected None" in capsys.readouterr().err
    assert sorted(p.name for p in (work / "checkpoints").iterdir()) == saved
    assert main(["latent", "train", "--data", str(tiny_dataset), "--workdir", str(tmp_path / "bad"), "--preset",
                 "tiny", "--steps", "5", "--ema", "1.5"]) == 2


def test_cem_finds_the_one_good_sequence():
    target = jnp.array([1, 3, 3, 6])
    seq, cost = cem(lambda s: jnp.sum(s != target, 1).astype(jnp.float32), jax.random.key(0), 7,
                    PlanConfig(horizon=4, candidates=256, elites=16, iterations=4))
    np.testing.assert_array_equal(seq, target)
    assert float(cost) == 0.0


def test_planner_takes_the_move_to_a_goal_one_move_away(latent_run, tiny_dataset):
    """The trivial case, through the whole planning path (encode, predict, cost, CEM): from a recorded frame,
    with the next frame as the goal, the planner picks the recorded action."""
    planner = LatentPlanner(load_latent(latent_run), PlanConfig(horizon=1, candidates=64, elites=8, iterations=2))
    data = EpisodeDataset(tiny_dataset, "train")
    hits = tries = 0
    for e in range(len(data)):
        ep = data.episode(e)
        for t in range(data.steps - 1):
            a = int(ep["actions"][t + 1])
            if a == 0 or np.array_equal(ep["frames"][t], ep["frames"][t + 1]):
                continue  # a move that changed nothing has no one right answer
            planner.set_goal(ep["frames"][t + 1])
            hits += planner.act(ep["frames"][t])[0] == a
            tries += 1
    assert tries >= 30 and hits >= 0.8 * tries, (hits, tries)


def test_plan_cli_writes_a_walk_and_bad_input_is_named(latent_run, tmp_path, capsys):
    out = tmp_path / "plan"
    assert main(["plan", "--model", str(latent_run), "--goal-steps", "2", "--episodes", "2", "--out", str(out),
                 "--candidates", "32", "--horizon", "2", "--iterations", "1"]) == 0
    s = json.loads((out / "plan.json").read_text())
    assert s["episodes"] == 2 and s["heldout_worlds"] and len(s["per_episode"]) == 2
    assert (out / "plan.mp4").stat().st_size > 0 and all(r["steps"] == 10 for r in s["per_episode"])
    # Walking toward a picture of the right size works; another size, a non-image, an unreachable N do not.
    Image.fromarray(np.full((32, 32, 3), 120, np.uint8)).save(tmp_path / "goal.png")
    assert main(["plan", "--model", str(latent_run), "--goal", str(tmp_path / "goal.png"), "--steps", "2",
                 "--out", str(tmp_path / "pic"), "--candidates", "16", "--iterations", "1"]) == 0
    capsys.readouterr()
    Image.fromarray(np.zeros((48, 40, 3), np.uint8)).save(tmp_path / "big.png")
    assert main(["plan", "--model", str(latent_run), "--goal", str(tmp_path / "big.png"), "--out", str(out)]) == 2
    assert "goal image: expected uint8 32x32x3 images" in capsys.readouterr().err
    (tmp_path / "notes.png").write_text("not a picture")
    assert main(["plan", "--model", str(latent_run), "--goal", str(tmp_path / "notes.png"), "--out", str(out)]) == 2
    assert "not a readable image" in capsys.readouterr().err
    for n in ("0", "1000"):
        assert main(["plan", "--model", str(latent_run), "--goal-steps", n, "--out", str(out)]) == 2
        assert "goal steps N" in capsys.readouterr().err


def test_wrong_model_kinds_and_configs_are_refused(latent_run, tiny_model_dir, tiny_dataset, tmp_path, capsys):
    with pytest.raises(WorldgenError, match="holds a world model, not a latent model"):
        load_latent(tiny_model_dir)
    assert main(["play", "--model", str(latent_run / "model")]) == 2
    assert "holds a latent model, not a world model" in capsys.readouterr().err
    # Resuming the run with another latent size: its checkpoint does not fit, and nothing of it changes.
    before = (latent_run / "metrics.jsonl").read_text()
    assert main(["latent", "train", "--data", str(tiny_dataset), "--workdir", str(latent_run), "--preset", "tiny",
                 "--latent", "16", "--steps", "201", "--horizon", "3", "--resume"]) == 2
    assert "latent: saved 32, expected 16" in capsys.readouterr().err
    assert (latent_run / "metrics.jsonl").read_text() == before
    assert main(["latent", "train", "--data", str(tiny_dataset), "--workdir", str(tmp_path / "s"), "--preset",
                 "small", "--steps", "1"]) == 2
    assert "latent model takes 64x64" in capsys.readouterr().err

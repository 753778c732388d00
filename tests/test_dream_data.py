"""Dream data: a model's own rollouts stored as network inputs beside the true frames, and training on them."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from training.dream_data import DreamData, collect
from training.objective import rollout_conds
from worldgen.cli import main
from worldgen.dataset import EpisodeDataset
from worldgen.errors import DataError
from worldgen.model.config import preset
from worldgen.xla import jit


@pytest.fixture(scope="module")
def dreams(rollout_dataset, random_tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("dreams")
    data = EpisodeDataset(rollout_dataset, "train")
    collect(random_tiny_model, data, out, batch=2, episodes=3, progress=False)  # 3 of 4 episodes: the last batch padded
    return out, data


def test_stored_steps_are_the_rollout_inputs_with_their_true_frames(dreams, random_tiny_model):
    out, data = dreams
    config = random_tiny_model.config
    k, t = config.context, data.steps
    d = DreamData(out, config)
    assert len(d) == 3 * (t - k) and d.meta["episodes"] == 3
    a = d.arrays
    ep = [data.episode(i) for i in range(3)]
    for e in range(3):
        rows = slice(e * (t - k), (e + 1) * (t - k))
        np.testing.assert_array_equal(a["target"][rows], ep[e]["frames"][k:])
        np.testing.assert_array_equal(a["action"][rows], ep[e]["actions"][k:])
        # The first dreamed step sees the last real frame; later steps see dreamed frames.
        np.testing.assert_array_equal(a["cond_rgb"][rows][0, ..., 3:6], ep[e]["frames"][k - 1])
        # The true poses around each step, for the camera head to learn the move from the dream's disparity.
        np.testing.assert_array_equal(a["last_pose"][rows], ep[e]["poses"][k - 1:-1])
        np.testing.assert_array_equal(a["pose"][rows], ep[e]["poses"][k:])
    camera = d.camera_steps(np.array([[5, 0], [1, 5]]))
    np.testing.assert_array_equal(camera["dream_last_disp_BRHW"][0, 1], a["cond_geo"][0, ..., 2].astype(np.float32))
    np.testing.assert_array_equal(camera["dream_pose_BR44"][1, 1], a["pose"][5])
    np.testing.assert_array_equal(camera["dream_action_BR"], a["action"][[[5, 0], [1, 5]]])
    assert not np.array_equal(a["cond_rgb"][1, ..., 3:6], ep[0]["frames"][k])
    # What is stored is what the rollout of the first batch computed (to 8 bits and float16), at its key.
    stack = lambda name: np.stack([x[name] for x in ep[:2]])
    graphdef, params = nnx.split(random_tiny_model)
    roll = jit(lambda p, *a: rollout_conds(nnx.merge(graphdef, p), *a))  # jitted, as collected (same options)
    conds, shown = roll(params, stack("frames"), stack("depth").astype(np.float32), stack("poses"),
                        stack("actions"), jnp.asarray(data.intrinsics), jax.random.fold_in(jax.random.key(0), 0))
    want = np.moveaxis(np.asarray(conds), 0, 1).reshape((-1,) + conds.shape[2:])
    got = d.steps(np.arange(2 * (t - k)))
    np.testing.assert_allclose(got["dream_cond_BRHWC"], want, atol=1 / 127.5 + 1e-3)
    assert np.abs(want[..., 3:5]).max() > 0.01  # the memory drawing is there, not zeros
    assert not np.asarray(shown).any() and not got["dream_shown_BRHW"].any()  # a plain model shows its network


def test_a_show_memory_rollout_marks_what_it_showed_and_training_does_not_score_it(rollout_dataset,
                                                                                  random_tiny_model):
    """Where a show_memory rollout showed the memory, the network's colours were not used: the stored step
    says so, and the RGB loss on it counts only the other pixels."""
    from training.objective import score_steps
    from worldgen.model.world_model import to_signed, with_options
    data = EpisodeDataset(rollout_dataset, "train")
    model = with_options(random_tiny_model, show_memory=True)
    ep = data.episode(0)
    batch = [ep[name][None] for name in ("frames", "depth", "poses", "actions")]
    conds, shown = rollout_conds(model, *batch, jnp.asarray(data.intrinsics), jax.random.key(0))
    shown = np.asarray(shown)
    assert shown.shape == conds.shape[:-1] and 0.2 < shown[0].mean() < 1.0
    target, disp = to_signed(jnp.asarray(ep["frames"][-1:])), jnp.zeros((1,) + shown.shape[2:])
    score = lambda mask: float(score_steps(model, conds[-1], jnp.asarray(ep["actions"][-1:]), target, disp,
                                           jax.random.key(1), mask)[0])
    every = score(None)
    assert score(jnp.zeros_like(shown[-1])) == pytest.approx(every, rel=1e-6)
    assert score(jnp.ones_like(shown[-1])) == 0.0
    assert abs(score(jnp.asarray(shown[-1])) - every) > 1e-4


def test_train_with_dream_data_and_bad_dream_folders(dreams, rollout_dataset, tmp_path, capsys):
    out, _ = dreams
    work = tmp_path / "run"
    assert main(["train", "--data", str(rollout_dataset), "--workdir", str(work), "--preset", "tiny", "--steps", "2",
                 "--batch-size", "2", "--eval-episodes", "0", "--dream", str(out), "--dream-per-row", "3"]) == 0
    logged = [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
    assert len(logged) == 2 and all(np.isfinite(r["dream_mse"]) and r["dream_mse"] > 0 for r in logged)
    summary = json.loads((work / "train_summary.json").read_text())
    assert summary["dream"]["per_row"] == 3 and summary["dream"]["episodes"] == 3
    capsys.readouterr()
    # Another resolution: the 64x64 small preset cannot train on 32x32 dream data.
    with pytest.raises(DataError, match=r"cond_rgb.npy is uint8 \(\d+, 32, 32, 9\), expected uint8 \(\d+, 64, 64, 9\)"):
        DreamData(out, preset("small"))
    assert main(["train", "--data", str(rollout_dataset), "--workdir", str(tmp_path / "r2"), "--preset", "tiny",
                 "--steps", "1", "--dream", str(tmp_path)]) == 2
    assert "holds no dream data" in capsys.readouterr().err
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "meta.json").write_text("[1, 2]")
    with pytest.raises(DataError, match="is not dream data"):
        DreamData(foreign, preset("tiny"))
    (foreign / "meta.json").write_text('{"format": "worldgen-dream-data-2"}')  # before the poses were stored
    with pytest.raises(DataError, match="it is 'worldgen-dream-data-2': collect it again"):
        DreamData(foreign, preset("tiny"))


def test_the_pose_stage_learns_the_move_from_the_dreams_own_disparity(dreams, rollout_dataset, tiny_model_dir,
                                                                     tmp_path, capsys):
    out, _ = dreams
    work = tmp_path / "pose"
    assert main(["train", "--data", str(rollout_dataset), "--workdir", str(work), "--init", str(tiny_model_dir),
                 "--stage", "pose", "--move-outcomes", "--steps", "2", "--batch-size", "4", "--eval-episodes", "0",
                 "--dream", str(out), "--dream-per-row", "2"]) == 0
    logged = [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
    assert len(logged) == 2 and all(np.isfinite(r["dream_move_err_cm"]) and r["dream_move_err_cm"] > 0 for r in logged)
    # The dream's steps change the loss: the same stage without them logs no dream error and another loss.
    assert main(["train", "--data", str(rollout_dataset), "--workdir", str(tmp_path / "plain"), "--init",
                 str(tiny_model_dir), "--stage", "pose", "--move-outcomes", "--steps", "2", "--batch-size", "4",
                 "--eval-episodes", "0"]) == 0
    plain = [json.loads(line) for line in (tmp_path / "plain" / "metrics.jsonl").read_text().splitlines()]
    assert "dream_move_err_cm" not in plain[0] and plain[0]["loss"] != logged[0]["loss"]
    capsys.readouterr()
    assert main(["train", "--data", str(rollout_dataset), "--workdir", str(tmp_path / "w"), "--init",
                 str(tiny_model_dir), "--stage", "pose", "--steps", "1", "--dream", str(out),
                 "--dream-weight", "2"]) == 2
    assert "--dream-weight is for --stage all" in capsys.readouterr().err and not (tmp_path / "w" / "model").exists()


def test_collect_refuses_to_overwrite(dreams, random_tiny_model, rollout_dataset):
    out, data = dreams
    before = (out / "cond_rgb.npy").read_bytes()
    with pytest.raises(DataError, match="already holds dream data"):
        collect(random_tiny_model, data, out, progress=False)
    assert (out / "cond_rgb.npy").read_bytes() == before


def test_provenance_models_store_their_extra_input(rollout_dataset, random_tiny_model, tmp_path):
    from worldgen.model.world_model import with_options
    model = with_options(random_tiny_model, provenance=True)
    collect(model, EpisodeDataset(rollout_dataset, "train"), tmp_path, batch=1, episodes=1, progress=False)
    d = DreamData(tmp_path, model.config)
    assert d.arrays["cond_geo"].shape[-1] == 4 and d.steps(np.arange(3))["dream_cond_BRHWC"].shape[-1] == 13
    assert d.arrays["cond_geo"][0, ..., 3].astype(float).mean() > 0.5  # the first dreamed step sees real memory
    with pytest.raises(DataError, match=r"cond_geo.npy is float16 \(\d+, 32, 32, 4\), expected float16 "
                                        r"\(\d+, 32, 32, 3\)"):
        DreamData(tmp_path, random_tiny_model.config)


def test_fill_is_switched_on_for_an_init_model_and_dream_data_must_match_it(dreams, rollout_dataset, tiny_model_dir,
                                                                             tmp_path, capsys):
    from worldgen.model.store import load_model
    out, _ = dreams
    work = tmp_path / "fill"
    assert main(["train", "--data", str(rollout_dataset), "--workdir", str(work), "--init", str(tiny_model_dir),
                 "--fill", "--steps", "1", "--batch-size", "2", "--eval-episodes", "0"]) == 0
    assert load_model(work / "model").config.fill and not load_model(tiny_model_dir).config.fill
    capsys.readouterr()
    assert main(["train", "--data", str(rollout_dataset), "--workdir", str(tmp_path / "f2"), "--init",
                 str(tiny_model_dir), "--fill", "--steps", "1", "--dream", str(out)]) == 2
    assert "a model with fill=False, but this model has fill=True" in capsys.readouterr().err
    assert main(["train", "--data", str(rollout_dataset), "--workdir", str(tmp_path / "f3"), "--init",
                 str(tiny_model_dir), "--fill", "--stage", "pose", "--steps", "1"]) == 2
    assert "use them with --stage all" in capsys.readouterr().err
    assert not (tmp_path / "f3" / "model").exists()

"""The shared fit loop, checkpoints, multi-device equality, and a tiny record -> train -> eval run."""
import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from training.fit import FitConfig, fit
from training.objective import loss_fn
from worldgen.cli import main
from worldgen.dataset import EpisodeDataset
from worldgen.errors import DataError, WorldgenError
from worldgen.model.config import preset
from worldgen.model.store import export_model, load_model
from worldgen.model.world_model import WorldModel


def _losses(workdir):
    return {r["step"]: r["loss"] for r in map(json.loads, (workdir / "metrics.jsonl").read_text().splitlines())
            if "loss" in r}


def _setup(data_dir):
    data = EpisodeDataset(data_dir, "train")
    intr = jnp.asarray(data.intrinsics)
    model = WorldModel(preset("tiny"), rngs=nnx.Rngs(0))
    return data, model, (lambda m, b, k: loss_fn(m, b, intr, k))


def test_resume_after_interruption_gives_the_same_next_loss(tiny_dataset, tmp_path):
    cfg = FitConfig(steps=6, batch_size=2, checkpoint_every=3, warmup_steps=1)
    data, model, loss = _setup(tiny_dataset)
    batches = lambda step, rows: data.windows(2, 6, 0, step, rows)
    fit(model, loss, batches, cfg, tmp_path / "full", progress=False)

    def crashing(step, rows):
        if step == 5:  # step 3 is logged by now, but the last checkpoint holds step 3 only
            raise KeyboardInterrupt("simulated kill after the step-3 checkpoint")
        return batches(step, rows)

    _, fresh, _ = _setup(tiny_dataset)
    with pytest.raises(KeyboardInterrupt):
        fit(fresh, loss, crashing, cfg, tmp_path / "cut", progress=False)
    with pytest.raises(WorldgenError, match="already has checkpoints"):
        fit(fresh, loss, batches, cfg, tmp_path / "cut", progress=False)
    _, resumed, _ = _setup(tiny_dataset)
    fit(resumed, loss, batches, cfg, tmp_path / "cut", resume=True, progress=False)
    full, cut = _losses(tmp_path / "full"), _losses(tmp_path / "cut")
    assert all(cut[i] == pytest.approx(full[i], rel=1e-5) for i in range(6))
    logged = [json.loads(line)["step"] for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert logged == list(range(6))  # each step once, although step 3 was logged before the kill
    # Resuming into another model config is refused with the differing fields named.
    other = WorldModel(preset("tiny", channels=(8, 8)), rngs=nnx.Rngs(0))
    with pytest.raises(WorldgenError, match=r"channels: saved \[8, 16\], expected \[8, 8\]"):
        fit(other, loss, batches, cfg, tmp_path / "cut", resume=True, progress=False)


def test_nan_stops_training_and_names_the_step(tiny_dataset, tmp_path):
    data, model, loss = _setup(tiny_dataset)
    bad_loss = lambda m, b, k: (lambda l, mt: (l * jnp.nan, dict(mt, loss=l * jnp.nan)))(*loss(m, b, k))
    from training.fit import TrainingDiverged
    with pytest.raises(TrainingDiverged, match="diverged at step 0: .*loss"):
        fit(model, bad_loss, lambda s, rows: data.windows(2, 6, 0, s, rows), FitConfig(steps=3, batch_size=2),
            tmp_path, progress=False)


def test_model_folder_round_trip_and_mismatch(tiny_model, tmp_path):
    export_model(tiny_model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    a, b = nnx.state(tiny_model, nnx.Param), nnx.state(loaded, nnx.Param)
    assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    with pytest.raises(WorldgenError, match="num_actions: saved 7, expected 5"):
        load_model(tmp_path / "m", expect=preset("tiny", num_actions=5))
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    cfg["model_config"]["channels"] = [8, 8]
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(WorldgenError, match="params is damaged or does not fit its config.json"):
        load_model(tmp_path / "m")
    export_model(tiny_model, tmp_path / "t")  # a truncated array file: one line that names the folder
    data_files = [f for f in (tmp_path / "t" / "params").rglob("*") if f.is_file() and f.parent.name == "d"]
    biggest = max(data_files, key=lambda f: f.stat().st_size)
    biggest.write_bytes(biggest.read_bytes()[:100])
    with pytest.raises(WorldgenError, match="params is damaged") as err:
        load_model(tmp_path / "t")
    assert "\n" not in str(err.value)
    (tmp_path / "m" / "config.json").write_text("{not json")
    with pytest.raises(WorldgenError, match="unreadable model config"):
        load_model(tmp_path / "m")
    with pytest.raises(WorldgenError, match="not found"):
        load_model(tmp_path / "nothing")


MULTI_DEVICE = textwrap.dedent("""
    import json, sys
    import jax, jax.numpy as jnp
    from flax import nnx
    from training.fit import FitConfig, fit
    from training.objective import loss_fn
    from worldgen.dataset import EpisodeDataset
    from worldgen.model.config import preset
    from worldgen.model.world_model import WorldModel
    data = EpisodeDataset(sys.argv[1], "train")
    intr = jnp.asarray(data.intrinsics)
    model = WorldModel(preset("tiny"), rngs=nnx.Rngs(0))
    fit(model, lambda m, b, k: loss_fn(m, b, intr, k), lambda s, rows: data.windows(4, 6, 0, s, rows),
        FitConfig(steps=2, batch_size=4, warmup_steps=1), sys.argv[2], progress=False)
    print(json.dumps({"devices": len(jax.devices())}))
""")


def test_four_devices_give_the_same_loss_as_one(tiny_dataset, tmp_path):
    results = {}
    for n in (1, 4):
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}", JAX_PLATFORMS="cpu")
        out = subprocess.run([sys.executable, "-c", MULTI_DEVICE, str(tiny_dataset), str(tmp_path / str(n))],
                             env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
        assert json.loads(out.stdout.strip().splitlines()[-1])["devices"] == n
        results[n] = _losses(tmp_path / str(n))
    assert results[4][0] == pytest.approx(results[1][0], rel=1e-5)
    assert results[4][1] == pytest.approx(results[1][1], rel=1e-4)


def test_tiny_record_train_eval_end_to_end(rollout_dataset, tmp_path, capsys):
    work, out = tmp_path / "run", tmp_path / "eval"
    assert main(["train", "--data", str(rollout_dataset), "--workdir", str(work), "--preset", "tiny",
                 "--steps", "3", "--batch-size", "2", "--eval-episodes", "2", "--rollout", "1", "--window", "12",
                 "--rollout-targets", "4", "--show-memory", "--sample-temperature", "0.5",
                 "--transient-near", "3", "--sample-steps", "1", "--palette-prior", "0.05",
                 "--palette-reach", "0.4", "--fill", "--fill-behind", "--fill-edge"]) == 0
    saved = json.loads((work / "model" / "config.json").read_text())["model_config"]
    assert saved["show_memory"] and saved["sample_temperature"] == 0.5 and saved["transient_near"] == 3.0
    assert saved["sample_steps"] == 1 and saved["palette_prior"] == 0.05 and saved["palette_reach"] == 0.4
    assert saved["fill"] and saved["fill_behind"] and saved["fill_edge"]
    logged = [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["rollout_mse"]) for r in logged if "loss" in r)
    assert main(["eval", "--model", str(work / "model"), "--data", str(rollout_dataset), "--out", str(out),
                 "--episodes", "2", "--long-walks", "2", "--hold-walks", "2", "--long-steps", "12",
                 "--show-memory", "off",
                 "--sample-temperature", "0", "--transient-near", "0", "--sample-steps", "2",
                 "--palette-prior", "0", "--palette-reach", "0", "--fill-behind", "off",
                 "--fill-edge", "off"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    # evaluated as asked, and the report says so
    assert m["model_config"]["show_memory"] is False and m["model_config"]["sample_temperature"] == 0.0
    assert m["model_config"]["transient_near"] == 0.0
    assert m["model_config"]["sample_steps"] == 2 and m["model_config"]["palette_prior"] == 0.0
    assert m["model_config"]["palette_reach"] == 0.0 and m["model_config"]["fill_behind"] is False
    assert m["model_config"]["fill_edge"] is False
    walk = m["long_walk"]
    assert list(walk["spans"]) == ["1-10", "11-12"] and walk["walks"] == 2 and np.isfinite(walk["revisit_psnr"])
    assert walk["actions"] == "explorer" and walk["keys"] == 3  # training.long_walk.KEYS by default
    for span in walk["spans"].values():
        assert set(span) == {"psnr", "copy_last_psnr", "start_rows_psnr", "shown_psnr", "knowable_psnr",
                             "sharpness_ratio", "colour_distance", "copy_last_colour_distance", "shown_colour_distance",
                             "camera_off_m", "gain_se", "sharpness_se"}
        assert 0 <= span["colour_distance"] <= 1 and 0 <= span["shown_colour_distance"] <= 1
        assert span["camera_off_m"] >= 0
        assert all(np.isfinite(span[k]) for k in ("start_rows_psnr", "shown_psnr", "knowable_psnr"))
    assert all(span["gain_se"] >= 0 and span["sharpness_se"] >= 0 for span in walk["spans"].values())
    assert list(walk["sources"]) == list(walk["spans"])  # where the error lies, by what memory knew
    for by_source in walk["sources"].values():
        assert list(by_source) == ["real", "dreamed", "magnified", "unknown"]
        assert abs(sum(v["pixels"] for v in by_source.values()) - 1) < 1e-6
        assert abs(sum(v["error"] for v in by_source.values()) - 1) < 1e-4
    assert by_source["real"]["pixels"] > 0 and np.isfinite(by_source["real"]["psnr"])
    stops = walk["stopped"]
    assert 0 <= stops["both"] <= min(stops["truth"], stops["dream"]) <= stops["moves"] <= 2 * 12
    assert (out / "long_walk.png").stat().st_size > 0 and (out / "filmstrip.png").stat().st_size > 0
    held = m["hold_walk"]  # W held after the viewer's start: the same figures, in a folder of their own
    assert held["actions"] == "hold forward" and held["walks"] == 2 and list(held["spans"]) == list(walk["spans"])
    assert held["stopped"]["moves"] == 2 * 12  # every dreamed action a move
    assert held["stopped"]["dreams"] == 2 * held["keys"] and 0 <= held["stopped"]["freeze_mean"] <= 12
    assert (out / "hold_w" / "long_walk.png").stat().st_size > 0 and (out / "hold_w" / "filmstrip.png").exists()
    assert m["horizons"] == [1, 4, 8, 16, 32] and m["n_episodes"] == 2 and m["context_frames"] == 2
    for key in ("psnr", "ssim", "baseline_psnr", "sharpness_ratio", "depth_absrel"):
        assert set(m[key]) == {"1", "4", "8", "16", "32"} and all(np.isfinite(v) for v in m[key].values())
    assert set(m["delta_psnr"]) == {"8", "16"} and np.isfinite(m["loop_psnr"]) and len(m["loop_actions"]) >= 16
    assert (out / "psnr.png").stat().st_size > 0 and (out / "rollout.gif").stat().st_size > 0
    assert main(["model-card", "--model", str(work / "model"), "--metrics", str(out / "metrics.json")]) == 0
    card = (work / "model" / "MODEL_CARD.md").read_text()
    assert "## Long walk (2 unseen worlds" in card and "| 11-12 | " in card
    assert "| dreamed steps | real | dreamed | magnified | unknown |" in card
    assert "## Targets" in card and "| long walk, steps 11-12: sharpness 0.8 to 1.25 |" in card
    assert "## Holding W (2 unseen worlds" in card and f"of {2 * 12}); the dream stood still" in card
    # Bad inputs: another resolution, a preset that contradicts --init, an empty folder.
    capsys.readouterr()
    assert main(["train", "--data", str(rollout_dataset), "--workdir", str(tmp_path / "r2"), "--preset", "small",
                 "--steps", "1"]) == 2
    assert "is 32x32 but preset 'small' works at 64x64" in capsys.readouterr().err
    assert main(["train", "--data", str(rollout_dataset), "--workdir", str(tmp_path / "r3"), "--preset", "small",
                 "--init", str(work / "model"), "--steps", "1"]) == 2
    assert "--preset small does not describe the model in" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["eval", "--model", str(work / "model"), "--data", str(tmp_path / "empty"), "--out", str(out)]) == 2
    assert "holds no shards" in capsys.readouterr().err


def test_eval_refuses_another_action_set(rollout_dataset, tmp_path):
    from training.evaluate import evaluate
    from worldgen.model.runner import Generator
    model = WorldModel(preset("tiny", num_actions=5), rngs=nnx.Rngs(0))
    with pytest.raises(DataError, match="has 7 actions .* but the model was trained on 5"):
        evaluate(Generator(model), EpisodeDataset(rollout_dataset, "heldout"), 2)


def test_bench_train_measures_the_model_it_is_given_and_bench_refuses_options_it_ignores(tiny_model, tmp_path,
                                                                                         capsys):
    from training.bench import bench_train
    path = export_model(tiny_model, tmp_path / "m")
    assert f"train step, model {path}" in bench_train(str(path), batch_size=2, steps=1)
    assert main(["bench", "render", "--model", str(path)]) != 0
    assert "worldgen bench render takes no --model" in capsys.readouterr().err


def test_a_model_is_timed_against_another_in_alternating_rounds(tiny_model, random_tiny_model):
    from worldgen.benchmarks import alternating_ms
    from worldgen.model.runner import Generator
    ms = alternating_ms({"this": Generator(tiny_model), "other": Generator(random_tiny_model)}, rounds=2, n=2)
    assert list(ms) == ["this", "other"] and all(len(v) == 2 and min(v) > 0 for v in ms.values())


def test_a_damaged_checkpoint_is_set_aside_and_the_one_before_resumes(tiny_dataset, tmp_path, capsys):
    cfg = FitConfig(steps=6, batch_size=2, checkpoint_every=2, warmup_steps=1)
    data, model, loss = _setup(tiny_dataset)
    batches = lambda step, rows: data.windows(2, 6, 0, step, rows)
    fit(model, loss, batches, cfg, tmp_path / "full", progress=False)
    _, cut, _ = _setup(tiny_dataset)
    fit(cut, loss, batches, cfg, tmp_path / "cut", progress=False, stop_after=4)
    newest = tmp_path / "cut" / "checkpoints" / "4"
    files = [f for f in newest.rglob("*") if f.is_file()]
    biggest = max(files, key=lambda f: f.stat().st_size)
    biggest.write_bytes(biggest.read_bytes()[:64])  # a truncated copy
    _, resumed, _ = _setup(tiny_dataset)
    fit(resumed, loss, batches, cfg, tmp_path / "cut", resume=True, progress=False)
    assert "checkpoint" in capsys.readouterr().err and (newest.parent / "4.damaged").is_dir()
    full, again = _losses(tmp_path / "full"), _losses(tmp_path / "cut")
    assert sorted(again) == list(range(6)) and all(again[i] == pytest.approx(full[i], rel=1e-5) for i in range(6))


@pytest.mark.parametrize("stage", ["pose", "colour"])
def test_a_stage_trains_its_own_part_and_leaves_the_other_bit_identical(stage, rollout_dataset, tiny_model_dir,
                                                                        tmp_path, capsys):
    from training.train_world_model import STAGES
    from worldgen.model.world_model import CAMERA, COLOUR
    work = tmp_path / stage
    # Weight decay would shrink every parameter the optimizer holds, trained or not.
    assert main(["train", "--data", str(rollout_dataset), "--workdir", str(work), "--stage", stage, "--init",
                 str(tiny_model_dir), "--steps", "2", "--batch-size", "4", "--lr", "1e-2", "--warmup", "0",
                 "--weight-decay", "0.5", "--eval-episodes", "0"]) == 0
    before, after = load_model(tiny_model_dir), load_model(work / "model")
    leaves = lambda m, part: jax.tree.leaves(nnx.state(m, part))
    kept = COLOUR if STAGES[stage] is CAMERA else CAMERA
    assert all(np.array_equal(a, b) for a, b in zip(leaves(before, kept), leaves(after, kept)))
    assert not any(np.array_equal(a, b) for a, b in zip(leaves(before, STAGES[stage]), leaves(after, STAGES[stage])))
    # The stage's checkpoint (its optimizer holds only that part) exports to the same model.
    assert main(["export-checkpoint", "--workdir", str(work), "--out", str(tmp_path / "again")]) == 0
    again = load_model(tmp_path / "again")
    assert all(np.array_equal(a, b) for a, b in zip(leaves(after, nnx.Param), leaves(again, nnx.Param)))
    # Resuming it as the other stage is refused before anything is touched.
    other = "colour" if stage == "pose" else "pose"
    saved = sorted(p.name for p in (work / "checkpoints").iterdir())
    capsys.readouterr()
    assert main(["train", "--data", str(rollout_dataset), "--workdir", str(work), "--stage", other, "--init",
                 str(tiny_model_dir), "--steps", "3", "--batch-size", "4", "--eval-episodes", "0", "--resume"]) == 2
    assert f"written by training stage '{stage}'" in capsys.readouterr().err
    assert sorted(p.name for p in (work / "checkpoints").iterdir()) == saved


def test_the_model_card_says_which_targets_a_model_meets():
    from training.model_card import targets_text
    span = {"psnr": 17.0, "copy_last_psnr": 13.0, "colour_distance": 0.2, "copy_last_colour_distance": 0.25,
            "sharpness_ratio": 1.3}
    m = {"psnr": {"1": 25.0, "4": 19.0, "8": 18.0, "16": 15.0}, "baseline_psnr": {"1": 17.0, "4": 13.0, "8": 12.0,
         "16": 11.0}, "delta_psnr": {"8": 3.999}, "sharpness_ratio": {"16": 0.8}, "loop_psnr": 148.13,
         "long_walk": {"spans": {"1-10": span}, "revisit_psnr": 29.0}}
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1:] for line in targets_text(m).splitlines()[2:]}
    assert rows["mean PSNR gain over copy-last at horizons 1/4/8/16 >= 6 dB"] == ["+6.000 dB", "met |"]
    assert rows["delta_psnr@8 >= 4 dB"] == ["+3.999 dB", "**not met** |"]  # not "+4.00"
    assert rows["sharpness@16 >= 0.8"] == ["0.80", "met |"]
    assert rows["long walk, steps 1-10: PSNR >= copy-last + 3 dB"] == ["+4.00 dB", "met |"]
    assert rows["long walk, steps 1-10: colour distance <= copy-last's (0.250)"] == ["0.200", "met |"]
    assert rows["long walk, steps 1-10: sharpness 0.8 to 1.25"] == ["1.300", "**not met** |"]
    assert rows["long walk revisit >= 30 dB"][1] == "**not met** |" and len(rows) == 8
    # with the spread over walks, a figure nearer its bound than its standard error says so, either side of it
    m["long_walk"]["spans"]["1-10"] = {**span, "gain_se": 1.2, "sharpness_se": 0.06}
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1:] for line in targets_text(m).splitlines()[2:]}
    assert rows["long walk, steps 1-10: PSNR >= copy-last + 3 dB"] == ["+4.00 dB",
                                                                       "met (within its ± 1.20 of the bound) |"]
    assert rows["long walk, steps 1-10: sharpness 0.8 to 1.25"] == ["1.300",
                                                                    "**not met** (within its ± 0.06 of the bound) |"]
    m["long_walk"]["spans"]["1-10"] = {**span, "gain_se": 0.5, "sharpness_se": 0.04, "sharpness_ratio": 0.9}
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1:] for line in targets_text(m).splitlines()[2:]}
    assert rows["long walk, steps 1-10: PSNR >= copy-last + 3 dB"] == ["+4.00 dB", "met |"]
    assert rows["long walk, steps 1-10: sharpness 0.8 to 1.25"] == ["0.900", "met |"]

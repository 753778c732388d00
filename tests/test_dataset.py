import json
import shutil
import warnings

import numpy as np
import pytest

from worldgen import DataError, WorldgenError
from worldgen.actions import NUM_ACTIONS
from worldgen.dataset import (DEPTH_AT_CENTRES, FORMAT_VERSION, EpisodeDataset, StaleDepthWarning, read_shard,
                              write_shard)
from worldgen.record import record, shard_path
from worldgen.spec import WorldSpec


def test_round_trip_and_contents(tiny_dataset):
    shard = read_shard(shard_path(tiny_dataset, 1))
    a = shard.arrays
    assert a["frames"].shape == (2, 12, 32, 32, 3) and a["depth"].shape == (2, 12, 32, 32)
    assert a["poses"].shape == (2, 12, 4, 4) and a["actions"].shape == (2, 12)
    assert (a["seeds"] == 1).all() and shard.meta["spec"]["biome"] == "mixed"
    assert shard.meta["num_actions"] == NUM_ACTIONS and (a["actions"][:, 0] == 0).all()
    # Episodes of one world differ, and poses move when the actions say so.
    assert not np.array_equal(a["frames"][0], a["frames"][1])
    assert np.abs(np.diff(a["poses"][0, :, :3, 3], axis=0)).sum() > 0


def test_recording_is_deterministic(tiny_dataset, tmp_path):
    record([2], 2, 12, 32, tmp_path, progress=False)
    a, b = read_shard(shard_path(tiny_dataset, 2)).arrays, read_shard(shard_path(tmp_path, 2)).arrays
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_splits_by_world_seed(tiny_dataset):
    train, held = EpisodeDataset(tiny_dataset, "train"), EpisodeDataset(tiny_dataset, "heldout")
    assert set(train.seeds) == {1, 2, 3} and set(held.seeds) == {0}
    assert len(EpisodeDataset(tiny_dataset)) == 8


def test_windows_are_reproducible(tiny_dataset):
    d = EpisodeDataset(tiny_dataset, "train")
    w1, w2 = d.windows(5, 6, seed=0, step=3), d.windows(5, 6, seed=0, step=3)
    assert w1["frames_BTHWC"].shape == (5, 6, 32, 32, 3) and w1["poses_BT44"].shape == (5, 6, 4, 4)
    assert all(np.array_equal(w1[k], w2[k]) for k in w1)
    assert not np.array_equal(w1["frames_BTHWC"], d.windows(5, 6, seed=0, step=4)["frames_BTHWC"])
    with pytest.raises(WorldgenError, match="window length 13"):
        d.windows(1, 13, 0, 0)


def test_resume_skips_finished_shards_and_never_rewrites_them(tiny_dataset, tmp_path):
    for seed in (1, 2):
        shutil.copy(shard_path(tiny_dataset, seed), tmp_path)
    before = shard_path(tmp_path, 1).stat().st_mtime_ns
    (tmp_path / ".shard-seed00000003.npz.tmp-999").write_bytes(b"half a shard")  # a killed writer
    summary = record(range(1, 4), 2, 12, 32, tmp_path, progress=False)
    assert [p.name for p in summary.written] == ["shard-seed00000003.npz"] and len(summary.skipped) == 2
    assert shard_path(tmp_path, 1).stat().st_mtime_ns == before
    assert not list(tmp_path.glob(".shard-*"))
    with pytest.raises(DataError, match="recorded with other settings"):
        record(range(1, 2), 2, 16, 32, tmp_path, progress=False)



def test_resume_takes_a_shard_recorded_before_a_spec_field_existed_and_names_what_differs(tiny_dataset, tmp_path):
    # A shard written before WorldSpec had a field holds no value for it: it is the same world, with the default.
    shard = read_shard(shard_path(tiny_dataset, 1))
    older = {k: v for k, v in shard.meta["spec"].items() if k != "export_radius"}
    write_shard(shard_path(tmp_path, 1), {**shard.meta, "spec": older}, shard.arrays)
    before = shard_path(tmp_path, 1).stat().st_mtime_ns
    assert len(record(range(1, 2), 2, 12, 32, tmp_path, progress=False).skipped) == 1
    assert shard_path(tmp_path, 1).stat().st_mtime_ns == before
    with pytest.raises(DataError, match=r"\(spec differ\)"):  # another world spec
        record(range(1, 2), 2, 12, 32, tmp_path, spec=WorldSpec(roughness=0.9), progress=False)
    with pytest.raises(DataError, match=r"\(steps, episodes differ\)"):
        record(range(1, 2), 1, 16, 32, tmp_path, progress=False)
    # One from a newer version, with a field this one does not know, is refused naming the field.
    write_shard(shard_path(tmp_path, 2), {**shard.meta, "spec": {**shard.meta["spec"], "fog": 0.5}}, shard.arrays)
    with pytest.raises(DataError, match="spec .*unknown WorldSpec field.*fog"):
        record(range(2, 3), 2, 12, 32, tmp_path, progress=False)
    assert read_shard(shard_path(tmp_path, 2)).meta["spec"]["fog"] == 0.5  # refused, not rewritten

def test_a_recording_made_before_depth_was_taken_at_pixel_centres_is_named_and_never_mixed(tiny_dataset, tmp_path,
                                                                                              capsys):
    from worldgen.cli import main
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # today's recordings load without a word
        EpisodeDataset(tiny_dataset)
    shard = read_shard(shard_path(tiny_dataset, 1))
    assert shard.meta[DEPTH_AT_CENTRES] is True
    shutil.copy(shard_path(tiny_dataset, 2), tmp_path)
    older = {k: v for k, v in shard.meta.items() if k != DEPTH_AT_CENTRES}
    write_shard(shard_path(tmp_path, 1), older, shard.arrays)
    with pytest.warns(StaleDepthWarning, match="1 of 2 shards were recorded before .*pixel centres"):
        data = EpisodeDataset(tmp_path)
    assert data.stale_depth == ["shard-seed00000001.npz"] and len(data) == 4  # it still loads
    with pytest.warns(StaleDepthWarning):
        assert main(["inspect", str(tmp_path)]) == 0
    assert "depth 0.4 pixel off its colours (recorded before the fix) in 1 shards: shard-seed00000001.npz" in \
        capsys.readouterr().out
    before = shard_path(tmp_path, 1).read_bytes()
    with pytest.raises(DataError, match=rf"\({DEPTH_AT_CENTRES} differ\)"):  # never resumed into: one depth a folder
        record(range(1, 2), 2, 12, 32, tmp_path, progress=False)
    assert shard_path(tmp_path, 1).read_bytes() == before
    imported = {**older, "source": "import"}  # a game's own depth: nothing of ours to have been off
    write_shard(shard_path(tmp_path, 1), imported, shard.arrays)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert EpisodeDataset(tmp_path).stale_depth == []


def test_corrupt_truncated_foreign_and_wrong_version(tiny_dataset, tmp_path):
    good = shard_path(tiny_dataset, 1).read_bytes()
    (tmp_path / "shard-trunc.npz").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="shard-trunc.npz: corrupt or truncated"):
        read_shard(tmp_path / "shard-trunc.npz")
    flipped = bytearray(good)
    flipped[len(good) // 3] ^= 0xFF
    (tmp_path / "shard-flip.npz").write_bytes(bytes(flipped))
    with pytest.raises(DataError, match="shard-flip.npz"):
        read_shard(tmp_path / "shard-flip.npz")
    np.savez(tmp_path / "shard-foreign.npz", x=np.zeros(3))
    with pytest.raises(DataError, match="not a worldgen shard"):
        read_shard(tmp_path / "shard-foreign.npz")
    np.savez(tmp_path / "shard-pickled.npz", frames=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="shard-pickled.npz"):
        read_shard(tmp_path / "shard-pickled.npz")
    arrays = dict(read_shard(shard_path(tiny_dataset, 1)).arrays)
    meta = read_shard(shard_path(tiny_dataset, 1)).meta
    path = write_shard(tmp_path / "shard-v.npz", meta, arrays)
    with np.load(path) as data:
        payload = {k: data[k] for k in data.files}
    payload["format_version"] = np.asarray(FORMAT_VERSION + 1)
    np.savez(path, **payload)
    with pytest.raises(DataError, match=f"format version {FORMAT_VERSION + 1}"):
        read_shard(path)
    for bad, message in ((np.array([1, 2]), "format_version must be one integer"),
                         (np.array("1"), "format_version must be one integer")):
        np.savez(path, **dict(payload, format_version=bad))
        with pytest.raises(DataError, match=message):
            read_shard(path)
    for meta_json, message in (("7", "must be a JSON object, got int"),
                               ('{"num_actions": 7.5, "action_names": [], "resolution": 32, "steps": 3, '
                                '"source": "x"}', "'num_actions' must be an integer")):
        meta_bytes = np.frombuffer(meta_json.encode(), np.uint8)
        np.savez(path, **dict(payload, format_version=np.asarray(FORMAT_VERSION), meta=meta_bytes))
        with pytest.raises(DataError, match=message):
            read_shard(path)


def test_inconsistent_arrays_are_rejected(tiny_dataset, tmp_path):
    shard = read_shard(shard_path(tiny_dataset, 1))
    arrays = dict(shard.arrays, actions=shard.arrays["actions"][:, :5])
    write_shard(tmp_path / "shard-bad.npz", shard.meta, arrays)
    with pytest.raises(DataError, match="actions must be int32"):
        read_shard(tmp_path / "shard-bad.npz")
    meta = dict(shard.meta, resolution=64)
    write_shard(tmp_path / "shard-bad.npz", meta, dict(shard.arrays))
    with pytest.raises(DataError, match="disagree with meta resolution"):
        read_shard(tmp_path / "shard-bad.npz")


def test_empty_or_missing_folder(tmp_path):
    with pytest.raises(DataError, match="holds no shards"):
        EpisodeDataset(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        EpisodeDataset(tmp_path / "nope")


def test_unwritable_output(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(WorldgenError, match="cannot create output folder"):
        record([1], 1, 4, 32, blocker / "sub", progress=False)


def test_meta_is_json(tiny_dataset):
    with np.load(shard_path(tiny_dataset, 1), allow_pickle=False) as data:
        meta = json.loads(data["meta"].tobytes())
    assert meta["steps"] == 12 and meta["resolution"] == 32


def test_inspect_prints_the_recorded_spec_and_spec_file_builds_that_world_again(tiny_dataset, tmp_path, capsys):
    import dataclasses

    from worldgen.cli import build_parser, main, spec_from_args
    assert main(["inspect", str(tiny_dataset)]) == 0
    line = [s for s in capsys.readouterr().out.splitlines() if s.startswith("world spec: ")]
    assert len(line) == 1
    (tmp_path / "spec.json").write_text(line[0].removeprefix("world spec: "))
    spec = WorldSpec.from_json((tmp_path / "spec.json").read_text())
    with np.load(shard_path(tiny_dataset, 1), allow_pickle=False) as data:
        assert spec == WorldSpec.from_dict(json.loads(data["meta"].tobytes())["spec"])
    snow = dataclasses.replace(spec, biome="snow", object_density=0.5)
    (tmp_path / "snow.json").write_text(snow.to_json())
    args = build_parser().parse_args(["view", "--spec", str(tmp_path / "snow.json"), "--roughness", "0.2"])
    assert spec_from_args(args) == dataclasses.replace(snow, roughness=0.2)  # the flag wins, the rest is the file's
    assert spec_from_args(build_parser().parse_args(["view", "--roughness", "0.2"])) == WorldSpec(roughness=0.2)


def test_record_vary_gives_each_world_its_own_description_and_resumes(tiny_dataset, tmp_path, capsys):
    from worldgen.cli import main
    from worldgen.describe import random_description, varied_spec
    base = WorldSpec(view_distance=30.0)
    record(range(0, 3), 1, 4, 32, tmp_path, spec=base, progress=False, vary=True)
    metas = [json.loads(np.load(shard_path(tmp_path, s))["meta"].tobytes()) for s in range(3)]
    assert [m["description"] for m in metas] == [random_description(s) for s in range(3)]
    assert [WorldSpec.from_dict(m["spec"]) for m in metas] == [varied_spec(s, base) for s in range(3)]
    assert len({json.dumps(m["spec"]) for m in metas}) == 3 and {m["spec"]["view_distance"] for m in metas} == {30.0}
    with np.load(shard_path(tmp_path, 1)) as varied, np.load(shard_path(tiny_dataset, 1)) as plain:
        assert not np.array_equal(varied["frames"][0, 0], plain["frames"][0, 0])  # not the default world 1
    before = shard_path(tmp_path, 1).stat().st_mtime_ns
    assert len(record(range(0, 3), 1, 4, 32, tmp_path, spec=base, progress=False, vary=True).skipped) == 3
    assert shard_path(tmp_path, 1).stat().st_mtime_ns == before
    with pytest.raises(DataError, match="recorded with other settings"):  # the same worlds, not varied
        record(range(1, 2), 1, 4, 32, tmp_path, spec=base, progress=False)
    assert main(["inspect", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "3 world specs (recorded with --vary)" in out and repr(random_description(2)) in out

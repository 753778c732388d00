import json

import numpy as np
import pytest
import trimesh
from PIL import Image

from worldgen import DataError, World, WorldSpec, WorldgenError
from worldgen.cli import main
from worldgen.dataset import EpisodeDataset
from worldgen.export import export_world
from worldgen.importer import import_frames


def _frames(folder, n, size=(40, 30)):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(folder / f"{i:05d}.png")
    return folder


def test_import_round_trip(tmp_path):
    frames = _frames(tmp_path / "game", 21)
    (tmp_path / "actions.txt").write_text("# my game\n" + "\n".join(str(i % 5) for i in range(21)))
    summary = import_frames(frames, tmp_path / "actions.txt", tmp_path / "out", resolution=32, steps=10)
    assert summary["episodes"] == 2 and summary["dropped_frames"] == 1 and summary["num_actions"] == 5
    d = EpisodeDataset(tmp_path / "out")
    assert not d.has_geometry and d.num_actions == 5 and d.episode(1)["frames"].shape == (10, 32, 32, 3)
    assert list(d.episode(1)["actions"][1:]) == [i % 5 for i in range(11, 20)]
    with pytest.raises(WorldgenError, match="already holds shards"):
        import_frames(frames, tmp_path / "actions.txt", tmp_path / "out", resolution=32, steps=10)


def test_import_bad_inputs(tmp_path):
    frames = _frames(tmp_path / "game", 6)
    Image.new("RGB", (64, 64)).save(frames / "00003.png")
    (tmp_path / "a.json").write_text(json.dumps([0] * 6))
    with pytest.raises(DataError, match=r"00003.png: frame is 64x64 but earlier frames are 40x30"):
        import_frames(frames, tmp_path / "a.json", tmp_path / "out", 32, 3)
    (tmp_path / "short.json").write_text(json.dumps([0] * 5))
    with pytest.raises(DataError, match="has 5 actions but .* has 6 frames"):
        import_frames(frames, tmp_path / "short.json", tmp_path / "out", 32, 3)
    (tmp_path / "bad.txt").write_text("1\nleft\n")
    with pytest.raises(DataError, match="line 2: expected one integer action"):
        import_frames(frames, tmp_path / "bad.txt", tmp_path / "out", 32, 3)
    for huge in (99999999999999999999, 5000000, -1):
        (tmp_path / "huge.txt").write_text("\n".join(["0"] * 5 + [str(huge)]))
        with pytest.raises(DataError, match=f"action {huge} is outside 0..255"):
            import_frames(frames, tmp_path / "huge.txt", tmp_path / "out", 32, 3)
    (tmp_path / "obj.json").write_text('[0, {"a": 1}]')
    with pytest.raises(DataError, match="every action must be an integer"):
        import_frames(frames, tmp_path / "obj.json", tmp_path / "out", 32, 3)
    Image.new("RGB", (40, 30)).save(frames / "00003.png")
    (frames / "00004.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="00004.png: not a readable image"):
        import_frames(frames, tmp_path / "a.json", tmp_path / "out2", 32, 2)


@pytest.mark.parametrize("fmt", ["glb", "obj", "ply"])
def test_export_round_trip(tmp_path, fmt):
    world = World(6, WorldSpec(export_radius=20))
    path = tmp_path / f"world.{fmt}"
    assert main(["export", "--seed", "6", "--export-radius", "20", "--format", fmt, "--out", str(path)]) == 0
    mesh = export_world(world, tmp_path / f"again.{fmt}")
    loaded = trimesh.load(path, force="mesh")
    assert len(loaded.faces) == len(mesh.faces)
    assert np.allclose(loaded.bounds, mesh.bounds, atol=1e-4)
    if fmt == "glb":
        colours = np.unique(loaded.visual.vertex_colors[:, :3], axis=0)
        assert len(colours) > 20  # terrain tints, foliage, walls, landmarks


def test_export_errors(tmp_path, capsys):
    assert main(["export", "--seed", "1", "--out", str(tmp_path / "missing" / "w.glb")]) == 2
    assert "missing does not exist" in capsys.readouterr().err
    with pytest.raises(WorldgenError, match="unknown export format 'stl'"):
        export_world(World(1), tmp_path / "w.stl")
    assert main(["export", "--seed", "1", "--biome", "lava", "--out", str(tmp_path / "w.glb")]) == 2
    assert "unknown biome 'lava'" in capsys.readouterr().err

import numpy as np
import pytest

from worldgen import SpecError, World, WorldSpec, generate_world
from worldgen.terrain import terrain_mesh


def _arrays(scene):
    return [(name, np.asarray(g.vertices).tobytes(), np.asarray(g.faces).tobytes(),
             np.asarray(g.visual.face_colors).tobytes()) for name, g in sorted(scene.geometry.items())]


def test_same_seed_same_world_bit_for_bit():
    spec = WorldSpec(export_radius=20)
    assert _arrays(generate_world(7, spec)) == _arrays(generate_world(7, spec))


def test_different_seeds_and_biomes_differ():
    spec = WorldSpec(export_radius=20)
    assert _arrays(generate_world(7, spec)) != _arrays(generate_world(8, spec))
    snow = generate_world(7, WorldSpec(export_radius=20, biome="snow"))
    desert = generate_world(7, WorldSpec(export_radius=20, biome="desert"))
    mean = lambda s: np.concatenate([g.visual.face_colors[:, :3] for g in s.geometry.values()]).mean(0)
    assert mean(snow)[2] > mean(desert)[2] + 40  # snow is bluish-white, desert is sandy


def test_chunk_order_does_not_matter_and_seams_meet():
    spec = WorldSpec()
    a, b = World(3, spec), World(3, spec)
    far = a.chunk_mesh(40, -12)
    a.chunk_mesh(0, 0)
    b.chunk_mesh(0, 0)
    assert np.array_equal(far.vertices, b.chunk_mesh(40, -12).vertices)
    left, _, _ = terrain_mesh(3, spec, 0, 0)
    right, _, _ = terrain_mesh(3, spec, 1, 0)
    x_edge = spec.chunk_size
    assert np.array_equal(left[np.isclose(left[:, 0], x_edge)], right[np.isclose(right[:, 0], x_edge)])


def test_endless_world_generates_far_away_and_bounded_world_stops():
    endless = World(1, WorldSpec())
    assert len(endless.chunk_mesh(10_000, -10_000).faces) > 0
    bounded = World(1, WorldSpec(world_size=64, export_radius=500))
    keys = bounded.region_chunks()
    assert len(keys) == 16 and all(-2 <= cx < 2 and -2 <= cz < 2 for cx, cz in keys)
    assert not bounded.in_bounds(40, 0) and bounded.in_bounds(31, -31)


def test_world_has_every_object_kind_and_landmarks():
    world = World(2, WorldSpec(object_density=4))
    kinds = {o.kind for key in world.chunks_within(0, 0, 80) for o in world.layout(*key)}
    assert kinds == {"tree", "rock", "building", "pillar", "tower"}
    none = World(2, WorldSpec(object_kinds=(), landmark_spacing=0))
    assert not any(none.layout(*key) for key in none.chunks_within(0, 0, 80))


def test_a_world_with_only_some_obstacles_keeps_its_terrain_and_is_another_world():
    world = World(2, WorldSpec(object_density=4))
    all_near = world.obstacles_near(0, 0, 30)
    some = world.only(all_near[::2])
    assert some.obstacles_near(0, 0, 30) == all_near[::2] and some.height(3.0, -7.0) == world.height(3.0, -7.0)
    assert some.key != world.key and some.key == world.only(reversed(all_near[::2])).key
    bare = world.only([])
    assert not bare.obstacles_near(0, 0, 30) and len(bare.chunk_mesh(0, 0).faces) < len(world.chunk_mesh(0, 0).faces)


@pytest.mark.parametrize("kwargs, words", [
    (dict(biome="jungle"), "unknown biome 'jungle'"),
    (dict(roughness=1.5), "roughness = 1.5 is out of range"),
    (dict(terrain_height=float("nan")), "terrain_height must be a finite number"),
    (dict(object_kinds=("tree", "castle")), "unknown object kind 'castle'"),
    (dict(sky_color=(1.0, 0.5)), "sky_color must be"),
    (dict(world_size=8.0), "smaller than chunk_size"),
])
def test_bad_spec_values_are_named(kwargs, words):
    with pytest.raises(SpecError, match=words.replace("(", r"\(")):
        WorldSpec(**kwargs)


def test_spec_json_round_trip_and_unknown_field():
    spec = WorldSpec(biome="snow", sky_color=(0.1, 0.2, 0.3), object_kinds=("rock",))
    assert WorldSpec.from_json(spec.to_json()) == spec
    with pytest.raises(SpecError, match="unknown WorldSpec field"):
        WorldSpec.from_dict({"colour": 3})


def test_bad_seed():
    with pytest.raises(SpecError, match="seed"):
        World(-1)

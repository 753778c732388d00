"""The inference rules that act on the world memory: the start frames' palette, collisions with what the real
frames show, and the eye standing on the ground they show."""
import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from worldgen import World
from worldgen.actions import Action
from worldgen.camera import eye_pose
from worldgen.errors import WorldgenError
from worldgen.model import memory as mem, motion
from worldgen.model import world_model as wm
from worldgen.model.config import preset
from worldgen.model.geometry import apply_delta, heading_frame
from worldgen.model.runner import Generator
from worldgen.player import EYE_HEIGHT, PLAYER_RADIUS, PlayerState, camera_pose, spawn, step
from worldgen.render import Renderer
from test_memory import RES, as_batch  # tests/ is on the path under pytest


def test_the_start_palette_is_the_most_frequent_colours_near_each_row():
    """memory.start_palette: per row, the PALETTE_SIZE most frequent exact colours of the start frames within
    `rows` rows (every PALETTE_STRIDE-th column), with the log of each one's share of those pixels; where a window
    has fewer colours, the most frequent repeats."""
    h, n = 32, mem.PALETTE_SIZE
    levels = np.zeros((1, 2, h, h, 3), np.uint8)
    levels[:, :, :16] = (90, 140, 220)  # sky: one colour
    rng = np.random.default_rng(0)
    ground = rng.integers(0, 256, (n + 40, 3))  # more ground colours than the palette holds
    cols = np.arange(0, h, mem.PALETTE_STRIDE)
    for i, r in enumerate(range(16, h)):
        for j, c in enumerate(cols):
            levels[0, :, r, c] = ground[(i * len(cols) + j) % len(ground)]
    levels[0, :, 16:, cols[0]] = (200, 180, 120)  # one ground colour in every row: the most frequent there
    palette = np.asarray(mem.start_palette(jnp.asarray(levels), 2))
    assert palette.shape == (1, h, n, 4)
    colours, shares = np.round((palette[..., :3] + 1.0) * 127.5).astype(int), np.exp(palette[..., 3])
    assert (colours[0, 3] == (90, 140, 220)).all()  # all sky near the top: the one colour repeated
    np.testing.assert_allclose(shares[0, 3], 1.0, rtol=1e-5)
    window = levels[0, :, 22:27, ::mem.PALETTE_STRIDE].reshape(-1, 3).astype(int)  # rows 22..26 for row 24
    assert (colours[0, 24, 0] == (200, 180, 120)).all()
    assert all((window == c).all(-1).any() for c in colours[0, 24])  # exact colours of the window
    assert len({tuple(c) for c in colours[0, 24]}) == min(n, len(np.unique(window, axis=0)))
    for c, share in zip(colours[0, 24], shares[0, 24]):
        np.testing.assert_allclose(share, (window == c).all(-1).mean(), rtol=1e-5)
    assert shares[0, 24, 0] > 2 * shares[0, 24, 1]


def test_with_a_palette_prior_a_colour_between_two_goes_to_the_one_the_world_shows_more_of():
    """memory.nearest_colour with a prior s: the least |x - p|^2 - 2 s^2 log(share). A colour a little nearer a
    rare palette colour goes to the common one; one far nearer the rare one stays with it; s = 0 is the nearest."""
    palette = jnp.array([[[[0.0, 0.0, 0.0, np.log(0.1)], [0.2, 0.0, 0.0, np.log(0.9)]]]])  # (1, 1, 2, 4)
    rgb = jnp.array([[[[0.09, 0.0, 0.0], [-0.5, 0.0, 0.0], [0.15, 0.0, 0.0]]]])  # (1, 1, 3, 3)
    red = lambda prior: np.asarray(mem.nearest_colour(rgb, palette, prior))[0, 0, :, 0]  # noqa: E731
    np.testing.assert_allclose(red(0.0), [0.0, 0.0, 0.2])
    np.testing.assert_allclose(red(0.1), [0.2, 0.0, 0.2])


def test_with_a_palette_reach_a_colour_far_from_every_palette_colour_stays_the_networks():
    """memory.nearest_colour with reach r: a colour farther than r from every candidate of its row keeps its own
    value (the network is unsure among the world's colours there); nearer ones go to the palette as before
    (with the prior); r = 0 moves every colour."""
    palette = jnp.array([[[[0.0, 0.0, 0.0, np.log(0.1)], [0.2, 0.0, 0.0, np.log(0.9)]]]])  # (1, 1, 2, 4)
    rgb = jnp.array([[[[0.09, 0.0, 0.0], [-0.5, 0.0, 0.0], [0.2, 0.45, 0.0], [0.2, 0.0, -0.25]]]])  # (1, 1, 4, 3)
    got = lambda prior, reach: np.asarray(mem.nearest_colour(rgb, palette, prior, reach))[0, 0]  # noqa: E731
    np.testing.assert_allclose(got(0.0, 0.0)[:, 0], [0.0, 0.0, 0.2, 0.2])
    np.testing.assert_allclose(got(0.0, 0.3), [[0.0, 0.0, 0.0], [-0.5, 0.0, 0.0], [0.2, 0.45, 0.0], [0.2, 0.0, 0.0]])
    np.testing.assert_allclose(got(0.1, 0.3)[0], [0.2, 0.0, 0.0])  # within reach, the prior still applies
    np.testing.assert_allclose(got(0.0, 0.5), got(0.0, 0.0))  # every colour within 0.5 of one


def test_with_palette_rows_the_network_paints_only_colours_of_the_start_frames_near_its_row(rollout_start,
                                                                                         random_tiny_model):
    """ModelConfig.palette_rows: every colour the network paints is the nearest to what it sampled among its
    row's palette (`memory.start_palette`, kept in the dream state); with show_memory the pixels memory knows
    stay the memory's drawing. Off (0), the network's colours are its own; a state made without a palette is
    refused by a model that paints with one."""
    painted = wm.with_options(random_tiny_model, palette_rows=2)
    gen = Generator(painted)
    state = gen.init(*rollout_start[2])
    _, out = gen.step(state, np.array([int(Action.FORWARD)]), jax.random.key(0))
    plain = Generator(random_tiny_model)
    _, ref = plain.step(plain.init(*rollout_start[2]), np.array([int(Action.FORWARD)]), jax.random.key(0))
    rgb, sampled = out["rgb"][0].astype(int), ref["rgb"][0].astype(int)
    palette = np.round((np.asarray(state.palette[0, ..., :3]) + 1.0) * 127.5).astype(int)  # (H, P, 3)
    for r in range(0, rgb.shape[0], 3):
        for c in range(0, rgb.shape[1], 5):
            assert (palette[r] == rgb[r, c]).all(-1).any()
            dist = np.sqrt(((palette[r] - sampled[r, c]) ** 2).sum(-1))
            assert np.sqrt(((rgb[r, c] - sampled[r, c]) ** 2).sum()) <= dist.min() + 1.8  # 8-bit rounding
    assert not (rgb == sampled).all()
    shown = wm.with_options(painted, show_memory=True)
    _, both = Generator(shown).step(state, np.array([int(Action.FORWARD)]), jax.random.key(0))
    cond, fine = wm.recall(shown.config, state, both["pose"])
    fine = np.asarray(fine[0])
    np.testing.assert_array_equal(both["rgb"][0][fine], np.asarray(wm.to_uint8(cond[0, ..., 0:3]))[fine])
    np.testing.assert_array_equal(both["rgb"][0][~fine], out["rgb"][0][~fine])
    with pytest.raises(WorldgenError, match="palette colours"):
        gen.step(plain.init(*rollout_start[2]), np.array([0]), jax.random.key(0))
    with pytest.raises(WorldgenError, match="palette_rows"):
        dataclasses.replace(painted.config, palette_rows=-1)


def test_with_collide_a_move_into_what_the_real_frames_show_is_blocked_as_the_players_is(random_tiny_model):
    """ModelConfig.collide: facing a building's wall at an angle from 3 m, the player walks forward until its
    disc would enter the wall, then slides along it. From one real frame taken at the start, `memory.solid`
    finds none of the positions the player walked through solid, and the full step into the wall solid;
    `motion.collide` then takes the same slide, and so it does where the camera head took the step as blocked.
    The same frame stored as dreamed content blocks nothing."""
    world = World(0)
    wall = next(o for o in world.obstacles_near(0.0, 0.0, 30.0) if o.is_box)
    s = PlayerState(wall.x + 0.3, wall.z + wall.hz + PLAYER_RADIUS + 2.6, math.radians(20.0))
    with Renderer(RES) as r:
        f = r.render(world, camera_pose(world, s))
    intr = jnp.asarray(f.intrinsics)
    pinned = mem.pin(mem.empty(1, RES * RES, RES * RES), 0, *as_batch(f), intr)
    dreamed = mem.write(mem.empty(1, RES * RES, RES * RES), *as_batch(f), intr, jnp.ones((1, RES, RES), bool))
    eye = lambda state: jnp.asarray(camera_pose(world, state))[None]
    for _ in range(8):
        after, hit = step(world, s, Action.FORWARD)
        if hit:
            break
        assert not bool(mem.solid(pinned, eye(after)[:, None, :3, 3], PLAYER_RADIUS)[0, 0])
        s = after
    assert hit and after.z == s.z and after.x != s.x  # the player slid along the wall (world x)
    pose = eye(s)
    full = jnp.array([[0.5, 0.0, 0.0, 0.0]])  # the whole step forward, as the camera head would take it
    into = pose[:, None, :3, 3] + 0.5 * heading_frame(pose[0])[0]
    assert bool(mem.solid(pinned, into, PLAYER_RADIUS)[0, 0])
    assert not bool(mem.solid(dreamed, into, PLAYER_RADIUS)[0, 0])
    took = lambda m: np.asarray(jax.vmap(apply_delta)(pose, motion.collide(m, pose, full, motion.move_outcomes(
        full[:, :2], pose), jnp.array([True])))[0, :3, 3])
    np.testing.assert_allclose(took(pinned)[[0, 2]], [after.x, after.z], atol=1e-3)
    np.testing.assert_allclose(took(dreamed), np.asarray(into[0, 0]), atol=1e-4)
    # the camera head taking the step as blocked: the start frames show the whole step blocked, so it slides on
    # as the player does; where they show nothing (the dreamed frame), the head's stop stands
    stop = jnp.zeros((1, 4))
    stopped = lambda m: np.asarray(jax.vmap(apply_delta)(pose, motion.collide(m, pose, stop, motion.move_outcomes(
        full[:, :2], pose), jnp.array([True])))[0, :3, 3])
    np.testing.assert_allclose(stopped(pinned)[[0, 2]], [after.x, after.z], atol=1e-3)
    np.testing.assert_allclose(stopped(dreamed), np.asarray(pose[0, :3, 3]), atol=1e-5)
    collider = wm.with_options(random_tiny_model, move_outcomes=True, collide=True)
    assert collider.config.collide
    with pytest.raises(WorldgenError, match="collide needs"):
        dataclasses.replace(random_tiny_model.config, collide=True)


def test_solid_is_what_stands_between_the_ground_and_just_below_the_eye_not_a_crown_overhead():
    """`memory.solid` counts pinned points standing in the player's disc from SOLID_ABOVE over the ground up to
    CROWN_CLEARANCE below the eye: a wall's points block, a crown's underside just below the eye does not (held
    walks stopped for good under one), and neither do the same points outside the disc or stored as dreamed."""
    eye = jnp.array([[[0.0, EYE_HEIGHT, 0.0]]])
    n = 2 * mem.SOLID_POINTS
    angle = 2 * jnp.pi * jnp.arange(n) / n  # evenly round: the ground fit stays level under a raised ring
    ring = jnp.stack([jnp.cos(angle), jnp.zeros(n), jnp.sin(angle)], -1) * 0.5 * PLAYER_RADIUS

    def memory(height, spread=1.0, pinned=True):
        points = jnp.concatenate([ring, ring * spread + jnp.array([0.0, height, 0.0])])[None]
        m = mem.empty(1, 2 * n if pinned else 0, 0 if pinned else 2 * n)
        return m.replace(points=points, valid=jnp.ones((1, 2 * n), bool))

    blocks = lambda m: bool(mem.solid(m, eye, PLAYER_RADIUS)[0, 0])
    assert not blocks(memory(0.0))  # the ground alone
    assert blocks(memory(EYE_HEIGHT - 0.5))  # a wall up to above the eye: its points at chest height
    assert blocks(memory(mem.SOLID_ABOVE + 0.05))  # a low box
    assert not blocks(memory(mem.SOLID_ABOVE - 0.05))  # a kerb the player steps over
    assert blocks(memory(EYE_HEIGHT - mem.CROWN_CLEARANCE - 0.05))
    assert not blocks(memory(EYE_HEIGHT - mem.CROWN_CLEARANCE + 0.05))  # a crown's underside
    assert not blocks(memory(EYE_HEIGHT - 0.5, spread=4.0))  # beside the disc
    assert not blocks(memory(EYE_HEIGHT - 0.5, pinned=False))  # dreamed content never blocks
    ground = jnp.stack([jnp.cos(jnp.arange(8.0)), jnp.zeros(8), jnp.sin(jnp.arange(8.0))], -1) * 1.2  # to fit

    def standing(count):  # the ground around the disc, and `count` points at chest height inside it
        points = jnp.concatenate([ground, ring[:count] + jnp.array([0.0, EYE_HEIGHT - 0.5, 0.0])])[None]
        return mem.empty(1, 8 + count, 0).replace(points=points, valid=jnp.ones((1, 8 + count), bool))

    assert blocks(standing(mem.SOLID_POINTS)) and not blocks(standing(mem.SOLID_POINTS - 1))


def test_collide_judges_a_step_up_at_the_eye_height_it_starts_from():
    """Under a crown whose underside hangs just over CROWN_CLEARANCE below the eye, a step the camera head takes
    a few centimetres up is free: `motion.collide` judges each position at the lower of the eye's heights before
    and after the step, or the crown would stand in the way of every move, staying put included (a held walk
    stopped so for 70 steps where the player walked on, docs/model.md session 47)."""
    g = jnp.arange(-2.0, 2.05, 0.2)
    x, z = (a.ravel() for a in jnp.meshgrid(g, g))
    crown = EYE_HEIGHT - mem.CROWN_CLEARANCE + 0.05
    points = jnp.concatenate([jnp.stack([x, 0 * x, z], -1), jnp.stack([x, 0 * x + crown, z], -1)])[None]
    m = mem.empty(1, points.shape[1], 0).replace(points=points, valid=jnp.ones(points.shape[:2], bool))
    pose = jnp.asarray(eye_pose(0.0, EYE_HEIGHT, 0.0, 0.0, 0.0))[None]
    up = jnp.array([[0.5, 0.0, 0.085, 0.0]])  # the whole step forward, 8.5 cm up
    took = motion.collide(m, pose, up, motion.move_outcomes(up[:, :2], pose), jnp.array([True]))
    np.testing.assert_allclose(np.asarray(took), np.asarray(up))
    raised = pose.at[:, 1, 3].add(0.085)  # the same crown 8.5 cm nearer the eye stands in the way everywhere
    assert bool(mem.solid(m, raised[:, None, :3, 3], PLAYER_RADIUS)[0, 0])


def test_solid_takes_a_low_rock_for_one_and_a_slope_for_ground():
    """The ground under a position is a plane fitted to the lower envelope of the real points around it
    (`memory.ground_fit`): a rock 0.25 m high whose rim reaches into the player's disc blocks on flat ground
    and on a slope of 1 in 2, the same rock 1.2 m off does not, nor does the bare slope, whose points in the
    disc span 0.3 m (the lowest point in the disc as the ground, as before session 38, missed the rock)."""
    g = jnp.arange(-1.5, 1.55, 0.1)
    x, z = (a.ravel() for a in jnp.meshgrid(g, g))

    def blocks(slope, rock_at=None):
        y = slope * x
        if rock_at is not None:
            r = jnp.hypot(x, z - rock_at) / 0.6
            y = y + 0.25 * jnp.sqrt(jnp.clip(1.0 - r ** 2, 0.0))
        m = mem.empty(1, x.size, 0).replace(points=jnp.stack([x, y, z], -1)[None], valid=jnp.ones((1, x.size), bool))
        return bool(mem.solid(m, jnp.array([[[0.0, EYE_HEIGHT, 0.0]]]), PLAYER_RADIUS)[0, 0])

    assert not blocks(0.0)
    assert not blocks(0.5)
    assert blocks(0.0, rock_at=-0.5)
    assert blocks(0.5, rock_at=-0.5)
    assert not blocks(0.0, rock_at=-1.2)
    assert not blocks(0.5, rock_at=-1.2)


def test_with_real_ground_the_eye_stands_on_the_ground_the_start_frames_show_all_around_it():
    """`memory.stand` (ModelConfig.real_ground): an eye more than STAND_OFF off EYE_HEIGHT over the ground the real
    start frames show all around it stands there, to the centimetre; nearer, it is left as it is; and where they do
    not show the ground all around (the first frame's own spot: nothing behind it was seen) nothing moves."""
    world = World(4)
    states = [spawn(world, np.random.default_rng(0))]
    states.append(step(world, states[-1], Action.FORWARD)[0])
    with Renderer(32) as r:
        frames = [r.render(world, camera_pose(world, s)) for s in states]
    gen = Generator(wm.WorldModel(preset("tiny"), rngs=nnx.Rngs(0)))
    memory = gen.init(np.stack([f.rgb_HWC for f in frames])[None],
                      np.stack([f.depth_HW for f in frames])[None].astype(np.float32),
                      np.stack([f.pose for f in frames])[None], frames[0].intrinsics).memory
    last = states[-1]
    for ahead, moved in ((0.0, False), (3.0, True), (4.0, True)):
        spot = PlayerState(last.x - ahead * math.sin(last.yaw), last.z - ahead * math.cos(last.yaw), last.yaw)
        pose = jnp.asarray(camera_pose(world, spot))[None]  # its eye EYE_HEIGHT over the true terrain
        for off in (-1.0, -mem.STAND_OFF + 0.1, 1.0):
            stood = float(mem.stand(memory, pose.at[:, 1, 3].add(off))[0, 1, 3]) - float(pose[0, 1, 3])
            if moved and abs(off) > mem.STAND_OFF:
                assert abs(stood) < 0.01, (ahead, off, stood)
            else:
                assert stood == pytest.approx(off, abs=1e-5), (ahead, off, stood)
    assert wm.with_options(gen.model, real_ground=True).config.real_ground
    with pytest.raises(WorldgenError, match="real_ground needs geometry"):
        dataclasses.replace(preset("tiny"), geometry=False, real_ground=True)

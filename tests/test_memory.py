"""The world memory: write-once surfels, footprint rendering, fixed capacity, and rollouts that are causal."""
import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from worldgen import World
from worldgen.actions import Action
from worldgen.dataset import EpisodeDataset
from worldgen.errors import WorldgenError
from worldgen.model import memory as mem
from worldgen.model import world_model as wm
from worldgen.model.config import preset
from worldgen.model.geometry import apply_delta, heading_frame, unproject
from worldgen.model.runner import Generator
from worldgen.player import EYE_HEIGHT, PLAYER_RADIUS, PlayerState, camera_pose, spawn, step
from worldgen.render import Renderer
from splat_reference import splat  # tests/ is on the path under pytest

RES = 48


@pytest.fixture(scope="module")
def walk():
    """Rendered frames of a short walk: spawn, 3 steps forward, then 3 back (a revisit of the start)."""
    world = World(4)
    s = spawn(world, np.random.default_rng(0))
    frames = []
    with Renderer(RES) as r:
        for a in [Action.NOOP] + [Action.FORWARD] * 3 + [Action.BACK] * 3:
            s, _ = step(world, s, a)
            frames.append(r.render(world, camera_pose(world, s)))
    return frames


def as_batch(f):
    return (jnp.asarray(f.rgb_HWC)[None].astype(jnp.float32) / 127.5 - 1, jnp.asarray(f.depth_HW)[None],
            jnp.asarray(f.pose)[None])


def test_a_surface_written_once_renders_back_identically_from_the_same_pose(walk):
    f = walk[0]
    rgb, depth, pose = as_batch(f)
    intr = jnp.asarray(f.intrinsics)
    m = mem.write(mem.empty(1, 0, 4 * RES * RES), rgb, depth, pose, intr, jnp.ones((1, RES, RES), bool))
    out_rgb, out_depth, cov, fine, real = mem.render(m, pose, intr, RES)
    ground = f.depth_HW > 0
    flying = np.asarray(mem.flying_pixels(depth))[0] & ground
    solid = ground & ~flying
    assert np.asarray(fine)[0][solid].all()
    assert np.allclose(np.asarray(out_rgb)[0][solid], np.asarray(rgb)[0][solid], atol=1e-5)
    assert np.allclose(np.asarray(out_depth)[0][solid], f.depth_HW[solid], rtol=1e-4)
    assert not np.asarray(real).any()  # written (dreamed) content is never called real
    pinned = mem.pin(mem.empty(1, RES * RES, RES * RES), 0, rgb, depth, pose, intr)
    assert np.asarray(mem.render(pinned, pose, intr, RES)[4])[0].all()  # a pinned real frame is, sky included
    # Written again from the same pose, nothing is new: the ring cursor does not move.
    again = mem.write(m, rgb, depth, pose, intr, ~fine)
    assert int(again.cursor[0]) == int(m.cursor[0]) + int((~np.asarray(fine)[0] & ~flying & ground).sum()) \
        + int((~np.asarray(fine)[0] & ~ground).sum())


def seen_from(far, near):
    """The pixels of frame `near` whose surface lies inside frame `far`'s view (not a pixel from its edge)."""
    intr = jnp.asarray(far.intrinsics)
    near_pts, near_ok = unproject(jnp.asarray(near.depth_HW), jnp.asarray(near.pose), intr)
    cam = (np.asarray(near_pts) - far.pose[:3, 3]) @ far.pose[:3, :3]
    u = intr[0, 2] + intr[0, 0] * cam[:, 0] / -cam[:, 2]
    v = intr[1, 2] - intr[1, 1] * cam[:, 1] / -cam[:, 2]
    return (np.asarray(near_ok) & (u >= 1) & (u < RES - 1) & (v >= 1) & (v < RES - 1)).reshape(RES, RES)


def test_magnified_near_ground_is_drawn_without_pinholes(walk):
    """Seen from 3 steps (1.5 m) closer, the ground of the first frame is magnified: the footprints (up to
    2x2 cells per level) and the pinhole fill leave few holes where a one-pixel splat leaves a sieve. (Not
    none: the footprint is round, and ground seen at a grazing angle stretches more along the view than
    across it; see docs/model.md.)"""
    far, near = walk[0], walk[3]
    rgb, depth, pose = as_batch(far)
    intr = jnp.asarray(far.intrinsics)
    m = mem.write(mem.empty(1, 0, RES * RES), rgb, depth, pose, intr, jnp.ones((1, RES, RES), bool))
    _, _, cov, _, _ = mem.render(m, jnp.asarray(near.pose)[None], intr, RES)
    pts, ok = unproject(depth[0], pose[0], intr)
    _, _, cov_point = splat(pts, rgb[0].reshape(-1, 3), ok, jnp.asarray(near.pose), intr, RES, RES)
    inside = seen_from(far, near)
    assert inside.sum() > 0.3 * RES * RES
    holes_footprint = 1 - float(np.asarray(cov)[0][inside].mean())
    holes_point = 1 - float(np.asarray(cov_point)[inside].mean())
    assert holes_point > 0.3 and holes_footprint < 0.15  # 0.13; 0.32 with one sample per point


def test_a_pose_seen_at_step_0_renders_from_memory_at_step_n(walk, tiny_model):
    """Walk 3 forward and 3 back: back at the start pose, the memory draws the real start frame again."""
    config = tiny_model.config.__class__(**{**tiny_model.config.to_dict(), "resolution": RES, "channels": (8, 16)})
    first = walk[0]
    frames = np.stack([first.rgb_HWC, first.rgb_HWC])[None]
    depth = np.stack([first.depth_HW, first.depth_HW])[None].astype(np.float32)
    poses = np.stack([first.pose, first.pose])[None]
    state = wm.init_state(config, *map(jnp.asarray, (frames, depth, poses)), jnp.asarray(first.intrinsics))
    for f in walk[1:]:  # dreamed frames (here: the true ones) are written where memory knew nothing
        cond, fine = wm.recall(config, state, jnp.asarray(f.pose)[None])
        state = wm.advance(config, state, jnp.asarray(f.rgb_HWC)[None] / 127.5 - 1.0,
                           jnp.asarray(np.where(f.depth_HW > 0, 1 / np.maximum(f.depth_HW, 0.5), 0))[None],
                           jnp.asarray(f.pose)[None], fine)
    cond, fine = wm.recall(config, state, jnp.asarray(walk[-1].pose)[None])
    shown = np.asarray(wm.to_uint8(cond[0, ..., 0:3]))
    assert np.allclose(walk[-1].pose, first.pose, atol=1e-4)
    assert np.asarray(cond[0, ..., 4]).all() and np.abs(shown.astype(int) - first.rgb_HWC).max() <= 1


def test_back_where_a_real_frame_was_taken_that_frame_is_drawn_exactly(walk):
    """Four real frames pinned, each seen from its neighbours' poses too: from the pose of one of them the
    drawing is that frame, pixel for pixel (the other frames' points, a fraction of a pixel apart, would
    shift its edges); a step beside it (10 cm) is drawn from all of them."""
    intr = jnp.asarray(walk[0].intrinsics)
    m = mem.empty(1, 4 * RES * RES, RES * RES, views=4)
    for i, f in enumerate(walk[:4]):
        m = mem.pin(m, i, *as_batch(f), intr)
    f = walk[2]
    rgb, depth, _, fine, real = mem.render(m, jnp.asarray(f.pose)[None], intr, RES)
    assert np.asarray(fine).all() and np.asarray(real).all()
    assert np.abs(np.asarray(wm.to_uint8(rgb))[0].astype(int) - f.rgb_HWC).max() == 0
    solid = f.depth_HW > 0
    assert np.allclose(np.asarray(depth)[0][solid], f.depth_HW[solid], rtol=1e-4)
    beside = np.array(f.pose)
    beside[0, 3] += 0.1
    together = mem.render(m.replace(views=m.views.at[:, 2, 0, 3].add(1.0)), jnp.asarray(beside)[None], intr, RES)[0]
    assert np.array_equal(np.asarray(mem.render(m, jnp.asarray(beside)[None], intr, RES)[0]), np.asarray(together))


def test_back_where_the_camera_stood_it_stands_at_the_height_it_had(walk):
    """The trail: within memory.SAME_PLACE of a spot the camera stood on, a pose takes that spot's height;
    farther away, or before it stood there, the pose is unchanged."""
    intr = jnp.asarray(walk[0].intrinsics)
    m = mem.empty(1, RES * RES, RES * RES)
    pose = jnp.asarray(walk[0].pose)[None]
    off = pose.at[:, 1, 3].add(0.3)
    assert np.array_equal(np.asarray(mem.settle(m, off)), np.asarray(off))  # nowhere stood yet
    m = mem.pin(m, 0, *as_batch(walk[0]), intr)
    near = off.at[:, 0, 3].add(0.03)
    assert float(mem.settle(m, near)[0, 1, 3]) == pytest.approx(float(pose[0, 1, 3]))
    far = off.at[:, 0, 3].add(0.2)
    assert np.array_equal(np.asarray(mem.settle(m, far)), np.asarray(far))
    for f in walk[1:4]:  # dreamed steps add to the trail as they are written
        m = mem.write(m, *as_batch(f), intr, jnp.zeros((1, RES, RES), bool))
    there = jnp.asarray(walk[3].pose)[None]
    assert float(mem.settle(m, there.at[:, 1, 3].add(-0.2))[0, 1, 3]) == pytest.approx(float(there[0, 1, 3]))


def test_capacity_and_cost_per_step_stay_fixed_over_a_long_dream(rollout_dataset, random_tiny_model):
    tiny_model = random_tiny_model  # a fresh model's camera-motion head starts at zero: it would not move
    data = EpisodeDataset(rollout_dataset, "train")
    ep = data.episode(1)
    k = tiny_model.config.context
    gen = Generator(tiny_model)
    state = gen.init(ep["frames"][None, :k], ep["depth"][None, :k], ep["poses"][None, :k], data.intrinsics)
    shapes = jax.tree.map(jnp.shape, state)
    ring = state.memory.capacity - state.memory.pinned
    written = 0
    for i in range(40):  # far more new content than the ring holds: it wraps around
        before = int(state.memory.cursor[0])
        state, _ = gen.step(state, np.array([(Action.FORWARD, Action.TURN_LEFT)[i % 2]]), jax.random.key(i))
        written += (int(state.memory.cursor[0]) - before) % ring
    assert jax.tree.map(jnp.shape, state) == shapes
    assert gen._step._cache_size() == 1  # one compiled step serves step 1 and step 40
    assert written > ring  # the ring wrapped, and the pinned real frames are still whole:
    assert bool(state.memory.valid[0, :state.memory.pinned].any())


def test_rollout_is_causal_in_the_actions(rollout_dataset, random_tiny_model):
    model = random_tiny_model
    data = EpisodeDataset(rollout_dataset, "train")
    a = data.arrays
    k = model.config.context
    gen = Generator(model)
    state = gen.init(a["frames"][:2, :k], a["depth"][:2, :k], a["poses"][:2, :k], data.intrinsics)
    actions = np.asarray(a["actions"][:2, k:k + 8])
    _, base = gen.rollout(state, actions, jax.random.key(0))
    for t in (2, 5):
        changed = actions.copy()
        changed[:, t:] = (changed[:, t:] + 3) % 7
        _, out = gen.rollout(state, changed, jax.random.key(0))
        assert np.array_equal(np.asarray(out["rgb"])[:, :t], np.asarray(base["rgb"])[:, :t])
        assert not np.array_equal(np.asarray(out["rgb"])[:, t], np.asarray(base["rgb"])[:, t])


def test_a_state_from_another_config_is_refused(rollout_dataset, tiny_model):
    data = EpisodeDataset(rollout_dataset, "train")
    ep = data.episode(0)
    k = tiny_model.config.context
    state = Generator(tiny_model).init(ep["frames"][None, :k], ep["depth"][None, :k], ep["poses"][None, :k],
                                       data.intrinsics)
    other = Generator(wm.WorldModel(preset("tiny", cache_frames=6), rngs=nnx.Rngs(0)))
    with pytest.raises(WorldgenError, match="another config .*memory points: state 4096, model 6144"):
        other.step(state, np.array([1]), jax.random.key(0))
    with pytest.raises(WorldgenError, match="expected a WorldState"):
        other.step({"last_rgb": 0}, np.array([1]), jax.random.key(0))


def test_a_fill_model_starts_from_the_filled_drawing_where_memory_knows_nothing(rollout_start, random_tiny_model):
    """With ModelConfig.fill the warp channels equal the plain model's where memory covers, hold the filled
    drawing elsewhere, and fall back to the last frame where memory knows nothing at all (a single picture)."""
    data, ep, args = rollout_start
    k = random_tiny_model.config.context
    filled_model = wm.with_options(random_tiny_model, fill=True)
    assert filled_model.config.fill and not random_tiny_model.config.fill
    state = wm.init_state(random_tiny_model.config, *map(jnp.asarray, args))
    turned = jnp.asarray(ep["poses"][None, k - 1]) @ jnp.asarray(
        [[np.cos(0.6), 0, np.sin(0.6), 0], [0, 1, 0, 0], [-np.sin(0.6), 0, np.cos(0.6), 0], [0, 0, 0, 1]], jnp.float32)
    plain, _ = wm.recall(random_tiny_model.config, state, turned)
    fill, _ = wm.recall(filled_model.config, state, turned)
    covered = np.asarray(plain[..., 4]) > 0.5
    assert 0.2 < covered.mean() < 0.95  # the turn uncovered a strip
    np.testing.assert_array_equal(np.asarray(fill)[covered], np.asarray(plain)[covered])
    assert np.abs(np.asarray(plain[..., 0:3])[~covered]).max() == 0 < np.abs(np.asarray(fill[..., 0:3])[~covered]).max()
    gen = Generator(filled_model)
    state = gen.from_image(ep["frames"][0])  # nothing in memory for the network to start from but the picture
    s, out = gen.step(state, np.array([0]), jax.random.key(0))
    assert out["rgb"].shape == (1,) + ep["frames"].shape[1:]


def test_with_show_memory_the_frame_is_the_memory_drawing_wherever_memory_knows_the_pixel(rollout_start,
                                                                                        random_tiny_model):
    """ModelConfig.show_memory: where memory knows a pixel at full resolution the frame is its drawing, not the
    network's repaint (checked with random non-zero weights, which repaint everything); elsewhere it is the
    network's sample. The rule needs no weights, so it can be switched on and off."""
    shown = wm.with_options(random_tiny_model, show_memory=True)
    assert shown.config.show_memory and not wm.with_options(shown, show_memory=False).config.show_memory
    gen, plain = Generator(shown), Generator(random_tiny_model)
    state = gen.init(*rollout_start[2])
    _, out = gen.step(state, np.array([int(Action.FORWARD)]), jax.random.key(0))
    _, ref = plain.step(state, np.array([int(Action.FORWARD)]), jax.random.key(0))
    cond, fine = wm.recall(shown.config, state, out["pose"])
    fine = np.asarray(fine[0])
    assert 0.3 < fine.mean() < 1.0  # a step forward: memory knows most of the view, not all of it
    drawn = np.asarray(wm.to_uint8(cond[0, ..., 0:3]))
    np.testing.assert_array_equal(out["rgb"][0][fine], drawn[fine])
    assert np.abs(ref["rgb"][0][fine].astype(int) - drawn[fine]).mean() > 5  # the network alone repaints it
    np.testing.assert_array_equal(out["rgb"][0][~fine], ref["rgb"][0][~fine])


def test_each_pixels_source_says_what_memory_knew_of_it(rollout_start, random_tiny_model):
    """`step`'s "source" (world_model.SOURCES): real or dreamed where memory knew the pixel at full resolution,
    from a real frame or from content the dream wrote before; magnified where it drew only magnified points;
    unknown where it drew nothing. At the first step nothing dreamed is known yet; after it, some is."""
    model = wm.with_options(random_tiny_model, show_memory=True)
    gen = Generator(model)
    state = gen.init(*rollout_start[2])
    forward = np.array([int(Action.FORWARD)])
    after, out = gen.step(state, forward, jax.random.key(0))
    cond, fine = wm.recall(model.config, state, out["pose"])
    source = np.asarray(out["source"][0])
    assert source.dtype == np.uint8 and set(np.unique(source)) <= {0, 2, 3} and (source == 0).any()
    np.testing.assert_array_equal(source <= 1, np.asarray(fine[0]))
    np.testing.assert_array_equal(source == 3, np.asarray(cond[0, ..., 4]) <= 0.5)
    _, out = gen.step(after, forward, jax.random.key(1))
    assert (np.asarray(out["source"][0]) == wm.SOURCES.index("dreamed")).any()


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


def test_with_transient_near_near_content_above_the_ground_is_shown_but_not_stored(walk, rollout_start,
                                                                                  random_tiny_model):
    """ModelConfig.transient_near: a dreamed wall 2 m ahead is stored only where it is ground (lower than
    NEAR_GROUND below the eye); the same wall 20 m ahead is stored whole. In a dream, the frame is the same
    and only the memory differs."""
    f = walk[0]
    rgb, _, pose = as_batch(f)
    intr = jnp.asarray(f.intrinsics)
    everything = jnp.ones((1, RES, RES), bool)

    def stored(depth, near):
        m = mem.write(mem.empty(1, 0, RES * RES), rgb, jnp.full((1, RES, RES), depth), pose, intr, everything, near)
        return np.asarray(m.points[0])[np.asarray(m.valid[0])] - f.pose[:3, 3]

    whole, kept = stored(2.0, 0.0), stored(2.0, 5.0)
    ground = whole[:, 1] <= -mem.NEAR_GROUND
    assert 0 < ground.sum() < len(whole) and len(kept) == ground.sum()
    assert (kept[:, 1] <= -mem.NEAR_GROUND).all()
    assert len(stored(20.0, 5.0)) == len(stored(20.0, 0.0)) == RES * RES
    near = wm.with_options(random_tiny_model, transient_near=5.0)
    state = Generator(near).init(*rollout_start[2])
    new, out = Generator(near).step(state, np.array([int(Action.FORWARD)]), jax.random.key(0))
    plain = Generator(random_tiny_model)
    old, ref = plain.step(plain.init(*rollout_start[2]), np.array([int(Action.FORWARD)]), jax.random.key(0))
    np.testing.assert_array_equal(out["rgb"], ref["rgb"])
    assert int(new.memory.cursor[0]) < int(old.memory.cursor[0])
    with pytest.raises(WorldgenError, match="transient_near"):
        dataclasses.replace(near.config, transient_near=-1.0)


def test_with_collide_a_move_into_what_the_real_frames_show_is_blocked_as_the_players_is(random_tiny_model):
    """ModelConfig.collide: facing a building's wall at an angle from 3 m, the player walks forward until its
    disc would enter the wall, then slides along it. From one real frame taken at the start, `memory.solid`
    finds none of the positions the player walked through solid, and the full step into the wall solid;
    `world_model.collide` then takes the same slide. The same frame stored as dreamed content blocks nothing."""
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
    took = lambda m: np.asarray(jax.vmap(apply_delta)(pose, wm.collide(m, pose, full, wm.move_outcomes(
        full[:, :2], pose), jnp.array([True])))[0, :3, 3])
    np.testing.assert_allclose(took(pinned)[[0, 2]], [after.x, after.z], atol=1e-3)
    np.testing.assert_allclose(took(dreamed), np.asarray(into[0, 0]), atol=1e-4)
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


def test_real_surfaces_draw_a_magnified_real_frame_whole_and_nearer_the_truth(walk):
    """Seen from 3 steps (1.5 m) closer, a pinned real frame's points leave holes; drawn as a surface
    (`ModelConfig.real_surfaces`) it covers what it saw (holes 0.5% of it, 12.5% with points), in the closer view's
    colours and depths; and back at the pinned pose the frame is still drawn exactly."""
    far, near = walk[0], walk[3]
    rgb, depth, pose = as_batch(far)
    intr = jnp.asarray(far.intrinsics)
    m = mem.pin(mem.empty(1, RES * RES, RES * RES), 0, rgb, depth, pose, intr)
    near_pose = jnp.asarray(near.pose)[None]
    inside = seen_from(far, near) & (near.depth_HW > 0)
    truth = near.rgb_HWC.astype(np.float32) / 127.5 - 1
    _, _, _, _, points_real = (np.asarray(x)[0] for x in mem.render(m, near_pose, intr, RES))
    rgb_s, depth_s, _, fine_s, real_s = (np.asarray(x)[0] for x in mem.render(m, near_pose, intr, RES, surfaces=True))
    assert 1 - points_real[inside].mean() > 0.05 and 1 - real_s[inside].mean() < 0.02
    assert (fine_s >= real_s).all()  # what the surface draws is known at full resolution
    new = inside & real_s & ~points_real
    assert new.sum() > 0.03 * RES * RES and np.abs(rgb_s - truth)[new].mean() < 0.05  # 0.020 (signed RGB)
    assert np.median(np.abs(depth_s - near.depth_HW)[inside & real_s] / near.depth_HW[inside & real_s]) < 0.02
    back = mem.render(m, pose, intr, RES, surfaces=True)
    assert np.abs(np.asarray(wm.to_uint8(back[0]))[0].astype(int) - far.rgb_HWC).max() == 0


def test_a_real_surface_is_never_drawn_across_a_silhouette():
    """A red box 2 m ahead of a blue wall 10 m away, seen from 0.5 m to the right: the strip of wall the box hid
    is not drawn (its rays pass between the box's surface and the wall's in the real frame and meet neither; with
    MEETS at 10, not 0.05, the wall would be drawn on through it), and every pixel drawn is red or blue, never a
    blend of the two."""
    res, f = 32, 24.0
    intr = jnp.array([[f, 0, res / 2], [0, f, res / 2], [0, 0, 1]])
    box = np.zeros((res, res), bool)
    box[10:22, 10:22] = True
    depth = np.where(box, 2.0, 10.0).astype(np.float32)
    rgb = np.where(box[..., None], [1.0, -1.0, -1.0], [-1.0, -1.0, 1.0]).astype(np.float32)
    m = mem.pin(mem.empty(1, res * res, res * res), 0, jnp.asarray(rgb)[None], jnp.asarray(depth)[None],
                jnp.eye(4)[None], intr)
    beside = jnp.eye(4).at[0, 3].set(0.5)[None]
    out, _, _, _, real = (np.asarray(x)[0] for x in mem.render(m, beside, intr, res, surfaces=True))
    nearest = np.minimum(np.abs(out - [1, -1, -1]).max(-1), np.abs(out - [-1, -1, 1]).max(-1))
    assert (nearest[real] < 0.01).all()
    assert not real[12:20, 16:21].any()  # the box moved 6 pixels left, the wall 1
    assert real[12:20, 0:16].all() and real[12:20, 21:31].all()
    with pytest.raises(WorldgenError, match="real_surfaces needs geometry"):
        preset("tiny", geometry=False, real_surfaces=True)


def test_with_edge_share_a_silhouette_the_nearest_real_frame_sees_past_is_shared_by_the_frames():
    """A red box 2 m ahead of a blue wall, pinned from two frames 20 cm apart and drawn from 7 cm right of the
    first: the second frame's edge pixel lands one column left of the box's true edge, and the nearest surface
    winning draws the box there. With `ModelConfig.edge_share` that column takes the wall's colour in the share of
    the frames that see the wall there (the nearest frame, one of two: half), and nothing else changes."""
    res, f = 32, 12.0
    intr = jnp.array([[f, 0, res / 2], [0, f, res / 2], [0, 0, 1]])
    u = np.arange(res) + 0.5 - res / 2

    def frame(cam_x):  # the box spans x, y in [-0.5, 0.5] at 2 m (6 pixels); the wall is 10 m away
        box = (np.abs(cam_x + u * 2 / f) <= 0.5)[None, :] & (np.abs(u * 2 / f) <= 0.5)[:, None]
        rgb = np.where(box[..., None], [1.0, -1.0, -1.0], [-1.0, -1.0, 1.0]).astype(np.float32)
        pose = jnp.eye(4).at[0, 3].set(cam_x)[None]
        return jnp.asarray(rgb)[None], jnp.asarray(np.where(box, 2.0, 10.0).astype(np.float32))[None], pose

    m = mem.empty(1, 2 * res * res, res * res, views=2)
    for i, cam_x in enumerate((0.0, -0.2)):
        m = mem.pin(m, i, *frame(cam_x), intr)
    target = jnp.eye(4).at[0, 3].set(0.07)[None]
    plain = np.asarray(mem.render(m, target, intr, res)[0])[0]
    shared = np.asarray(mem.render(m, target, intr, res, edges=True)[0])[0]
    red, blue = np.array([1.0, -1.0, -1.0]), np.array([-1.0, -1.0, 1.0])
    truth = np.asarray(frame(0.07)[0])[0]
    assert np.abs(plain[13:19, 12] - red).max() < 1e-6 and np.abs(truth[13:19, 12] - blue).max() == 0
    assert np.abs(shared[13:19, 12] - (red + blue) / 2).max() < 1e-6
    changed = np.abs(shared - plain).max(-1) > 1e-6
    assert changed.sum() == 6 and changed[13:19, 12].all()
    with pytest.raises(WorldgenError, match="edge_share needs geometry"):
        preset("tiny", geometry=False, edge_share=True)


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


def test_a_fourth_pyramid_level_draws_a_wall_walked_up_to_whole():
    """A wall seen 8 m away, walked up to 1 m: its points are 8 pixels wide, and a 3-level pyramid draws each at
    most 4x4, a sieve of half the view that the network would repaint with what stands behind; with
    `ModelConfig.pyramid_levels` 4 every pixel is the wall, at its depth and in its colours."""
    res, f = 32, 24.0
    intr = jnp.array([[f, 0, res / 2], [0, f, res / 2], [0, 0, 1]])
    rgb = np.zeros((res, res, 3), np.float32)
    rgb[..., 0] = np.linspace(-1, 1, res)[None]  # a gradient across the wall, left to right
    m = mem.write(mem.empty(1, 0, res * res), jnp.asarray(rgb)[None], jnp.full((1, res, res), 8.0), jnp.eye(4)[None],
                  intr, jnp.ones((1, res, res), bool))
    near = jnp.eye(4).at[2, 3].set(-7.0)[None]
    sieve, whole = ((np.asarray(x)[0] for x in mem.render(m, near, intr, res, levels=n)) for n in (3, 4))
    _, _, cover3, _, _ = sieve
    out, depth, cover, _, _ = whole
    assert 0.3 < (cover3 > 0).mean() < 0.7 and (cover > 0).all()
    assert np.allclose(depth, 1.0, atol=0.01)
    seen = np.interp((np.arange(res) + 0.5 - res / 2) / 8 + res / 2 - 0.5, np.arange(res), np.linspace(-1, 1, res))
    assert np.abs(out[..., 0] - seen[None]).max() < 0.1  # the wall's middle eighth, 8 times as wide
    assert preset("tiny", pyramid_levels=4).pyramid_levels == 4
    with pytest.raises(WorldgenError, match="pyramid_levels = 5: expected 1..6, with cells of the top level"):
        preset("tiny", pyramid_levels=5)  # 32 pixels: 16-pixel cells

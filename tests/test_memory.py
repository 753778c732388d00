"""The world memory: write-once surfels, footprint rendering, fixed capacity, and rollouts that are causal."""
import dataclasses

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
from worldgen.model.geometry import unproject
from worldgen.model.runner import Generator
from worldgen.player import camera_pose, spawn, step
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

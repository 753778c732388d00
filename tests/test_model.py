"""World model behaviour: geometry, causality, shapes with and without jit, constant-cost steps."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from training.objective import TEACHER_TARGETS, loss_fn, own_rollout, painted_mse, rollout_conds, teacher_forced
from worldgen import World
from worldgen.actions import Action
from worldgen.dataset import EpisodeDataset
from worldgen.errors import WorldgenError
from worldgen.model import geometry, sky
from worldgen.model import memory as mem
from worldgen.model import world_model as wm
from worldgen.model.config import ModelConfig, preset
from worldgen.model.geometry import (SKY_DEPTH, depth_to_disparity, disparity_to_depth, ground_disparity,
                                     ray_elevation, unproject)
from worldgen.model.runner import Generator
from worldgen.player import EYE_HEIGHT, camera_pose, spawn, step
from worldgen.render import Renderer
from splat_reference import splat  # tests/ is on the path under pytest


def test_reprojecting_a_frame_into_its_own_pose_reproduces_it():
    world = World(4)
    with Renderer(48) as r:
        f = r.render(world, camera_pose(world, spawn(world, np.random.default_rng(0))))
    pts, ok = unproject(jnp.asarray(f.depth_HW), jnp.asarray(f.pose), jnp.asarray(f.intrinsics))
    rgb, depth, mask = splat(pts, jnp.asarray(f.rgb_HWC.reshape(-1, 3), jnp.float32), ok, jnp.asarray(f.pose),
                             jnp.asarray(f.intrinsics), 48, 48)
    ground = f.depth_HW > 0
    assert np.array_equal(np.asarray(mask) > 0, ground)
    assert np.allclose(np.asarray(rgb)[ground], f.rgb_HWC[ground], atol=1e-3)
    assert np.allclose(np.asarray(depth)[ground], f.depth_HW[ground], rtol=1e-4)


def test_sky_points_carry_the_sky_into_other_views_and_read_back_as_sky():
    world = World(4)
    s0 = spawn(world, np.random.default_rng(0))
    s1, _ = step(world, s0, Action.TURN_LEFT)
    with Renderer(48) as r:
        f0, f1 = (r.render(world, camera_pose(world, s)) for s in (s0, s1))
    intr = jnp.asarray(f0.intrinsics)
    pts, ok = unproject(jnp.asarray(f0.depth_HW), jnp.asarray(f0.pose), intr, sky=True)
    colors = jnp.asarray(f0.rgb_HWC.reshape(-1, 3), jnp.float32)
    assert bool(ok.all())
    rgb, depth, mask = splat(pts, colors, ok, jnp.asarray(f0.pose), intr, 48, 48)
    assert np.asarray(mask).all() and np.allclose(np.asarray(rgb), f0.rgb_HWC, atol=1e-3)
    sky0 = f0.depth_HW == 0
    assert sky0.any() and not np.asarray(disparity_to_depth(depth_to_disparity(depth)))[sky0].any()
    # Turned 15 degrees left: the sky f0 saw lands on sky in f1, in the sky's colour.
    rgb, depth, mask = splat(pts, colors, ok, jnp.asarray(f1.pose), intr, 48, 48)
    from_sky = (np.asarray(mask) > 0) & (np.asarray(depth) > 500)
    assert from_sky.sum() > 0.5 * sky0.sum()
    assert (f1.depth_HW[from_sky] == 0).mean() > 0.95
    assert (np.abs(np.asarray(rgb)[from_sky] - f1.rgb_HWC[from_sky]).max(-1) < 3).mean() > 0.9


def test_with_ground_within_a_dreamed_sky_under_the_horizon_is_ground_and_never_stored_as_sky(rollout_start,
                                                                                          random_tiny_model):
    """ModelConfig.ground_within: a network that says sky everywhere (its disparity output pushed far under zero)
    stores every pixel it paints as sky, the ground under the eye too, where it then stays at any distance walked.
    With the rule, a pixel whose ray meets a level ground EYE_HEIGHT under the eye within 30 m is that ground: the
    frame's depth there is the plane's, no ring point well under the eye lies at sky distance, and the colours are the
    same. `geometry.ground_disparity` is that plane: each downward ray unprojected at its depth lands on it."""
    data, ep, args = rollout_start
    pose, intr = jnp.asarray(args[2][0, -1]), jnp.asarray(data.intrinsics)
    plane = np.asarray(ground_disparity(pose, intr, 32, EYE_HEIGHT))
    down = plane > 0
    assert 0.3 < down.mean() < 1.0  # the camera looks a little down: the horizon is in the frame
    pts, _ = unproject(jnp.asarray(np.where(down, 1.0 / np.maximum(plane, 1e-9), 0.0)), pose, intr)
    near = (down & (plane < 2.0)).reshape(-1)  # nearer than 0.5 m, disparity is capped (depth_to_disparity)
    np.testing.assert_allclose(np.asarray(pts)[near, 1], float(pose[1, 3]) - EYE_HEIGHT, atol=1e-3)
    params = nnx.state(random_tiny_model, nnx.Param)
    params["unet"]["head"]["bias"] = nnx.Param(params["unet"]["head"]["bias"][...].at[3].set(-100.0))
    sky_says = nnx.merge(nnx.graphdef(random_tiny_model), params, nnx.state(random_tiny_model, nnx.Not(nnx.Param)))
    forward = np.array([int(Action.FORWARD)])
    outs = {}
    for within in (0.0, 30.0):
        gen = Generator(wm.with_options(sky_says, ground_within=within))
        new, out = gen.step(gen.init(*args), forward, jax.random.key(0))
        ring, valid = slice(new.memory.pinned, None), np.asarray(new.memory.valid[0, new.memory.pinned:])
        rel = np.asarray(new.memory.points[0, ring] - out["pose"][0, None, :3, 3])[valid]
        dist = np.linalg.norm(rel, axis=-1)  # sky points 10 degrees or more under the horizon: ground within 9 m
        outs[within] = out, (rel[:, 1] < -np.sin(np.radians(10)) * dist) & (dist > 0.5 * SKY_DEPTH)
    (off, sky_under_off), (on, sky_under_on) = outs[0.0], outs[30.0]
    assert not np.asarray(off["depth"]).any() and sky_under_off.sum() > 100
    plane = np.asarray(ground_disparity(on["pose"][0], intr, 32, EYE_HEIGHT))
    ground = plane >= 1 / 30.0
    np.testing.assert_allclose(np.asarray(on["depth"][0])[ground], 1.0 / plane[ground], rtol=1e-4)
    assert not np.asarray(on["depth"][0])[~ground].any() and not sky_under_on.any()
    np.testing.assert_array_equal(on["rgb"], off["rgb"])
    # training's rollouts through memory (`worldgen dream-data`) store the same ground
    window = [jnp.asarray(ep[name][None, :4]) for name in ("frames", "depth", "poses", "actions")]
    conds, _ = rollout_conds(wm.with_options(sky_says, ground_within=30.0), *window, intr, jax.random.key(0))
    last = np.asarray(conds[-1, 0, ..., 11])  # the disparity of the frame before the last step
    plane = np.asarray(ground_disparity(jnp.asarray(ep["poses"][2]), intr, 32, EYE_HEIGHT))
    np.testing.assert_allclose(last[plane >= 1 / 30.0], plane[plane >= 1 / 30.0], rtol=1e-4)
    with pytest.raises(WorldgenError, match="ground_within"):
        dataclasses.replace(preset("tiny"), ground_within=0.5)
    with pytest.raises(WorldgenError, match="ground_within needs geometry"):
        dataclasses.replace(preset("tiny"), geometry=False, ground_within=30.0)


def test_with_ground_within_the_dreams_ground_lies_no_lower_than_the_floor_under_the_eye(rollout_start):
    """`sky.ground_floor`: a pixel the network says lies farther than a level ground EYE_HEIGHT + GROUND_FLOOR
    under the eye (where that ground is within reach) is put on that ground; what reads as nearer, as sky, or
    lies beyond reach stays as the network said."""
    _, _, args = rollout_start
    pose, intr = jnp.asarray(args[2][0, -1]), jnp.asarray(args[3])
    floor = np.asarray(ground_disparity(pose, intr, 32, EYE_HEIGHT + sky.GROUND_FLOOR))
    within = 30.0
    reach = floor >= 1 / within
    assert 0.2 < reach.mean() < 0.8
    disp = np.full((32, 32), 0.02, np.float32)  # 50 m: lower than the floor under every ray within reach
    disp[:, :4] = 0.5  # 2 m: nearer than the ground
    disp[:, 4:8] = 0.5 * geometry.SKY_DISPARITY  # sky
    out = np.asarray(sky.ground_floor(jnp.asarray(disp)[None], pose[None], intr, within))[0]
    moved = out != disp
    np.testing.assert_array_equal(moved, reach & (np.arange(32) >= 8)[None])
    np.testing.assert_allclose(out[moved], floor[moved], rtol=1e-6)
    pts, _ = unproject(jnp.asarray(1.0 / np.where(moved, out, 1.0)), pose, intr)  # on the floor's plane
    np.testing.assert_allclose(np.asarray(pts)[moved.reshape(-1), 1],
                               float(pose[1, 3]) - EYE_HEIGHT - sky.GROUND_FLOOR, atol=1e-3)


def test_with_sky_above_a_painted_sky_high_over_the_horizon_takes_the_real_frames_sky(rollout_start,
                                                                                     random_tiny_model):
    """ModelConfig.sky_above: a network that says sky everywhere paints the strip a turn uncovers in colours of its
    own. With the rule, its pixels more than 10 degrees over the horizon are shown and stored in the real start
    frames' sky colour (`memory.sky_colour`, the mean of their sky pixels); the rest of the frame is as without it.
    Start frames that show no sky leave the frame as it was; bad values and geometry=False are refused."""
    data, ep, args = rollout_start
    frames, depth = args[0], args[1]
    colour, known = mem.sky_colour(Generator(random_tiny_model).init(*args).memory)
    assert bool(known[0]) and (depth == 0).any()
    want = frames[depth == 0].astype(np.float64).mean(0) / 127.5 - 1.0  # the real sky pixels' mean, signed
    np.testing.assert_allclose(np.asarray(colour[0]), want, atol=1e-5)
    params = nnx.state(random_tiny_model, nnx.Param)
    params["unet"]["head"]["bias"] = nnx.Param(params["unet"]["head"]["bias"][...].at[3].set(-100.0))
    sky_says = nnx.merge(nnx.graphdef(random_tiny_model), params, nnx.state(random_tiny_model, nnx.Not(nnx.Param)))
    turn = np.array([int(Action.TURN_LEFT)])

    def dream(above, start=args):
        gen = Generator(wm.with_options(sky_says, sky_above=above))
        return gen.step(gen.init(*start), turn, jax.random.key(0))

    (_, off), (new, on) = dream(0.0), dream(10.0)
    high = np.asarray(ray_elevation(on["pose"][0], jnp.asarray(data.intrinsics), 32)) > np.sin(np.radians(10))
    painted = np.asarray(on["source"][0]) >= 2  # magnified or unknown: what the network painted
    changed = np.asarray(on["rgb"][0] != off["rgb"][0]).any(-1)
    assert (painted & high).sum() > 10 and not (changed & ~(painted & high)).any()
    sky_uint8 = np.clip(np.round((np.asarray(colour[0]) + 1) * 127.5), 0, 255)
    np.testing.assert_array_equal(np.asarray(on["rgb"][0])[painted & high], np.broadcast_to(sky_uint8, (
        (painted & high).sum(), 3)))
    ring = slice(new.memory.pinned, None)  # stored so: the ring's new points high over the horizon, at sky distance
    rel = np.asarray(new.memory.points[0, ring] - on["pose"][0, None, :3, 3])
    dist = np.linalg.norm(rel, axis=-1)
    stored = np.asarray(new.memory.valid[0, ring]) & (rel[:, 1] > np.sin(np.radians(11)) * dist)
    assert stored.sum() > 10
    np.testing.assert_allclose(np.asarray(new.memory.colors[0, ring])[stored],
                               np.broadcast_to(sky_uint8 / 127.5 - 1, (stored.sum(), 3)), atol=1e-6)
    no_sky = (frames, np.full_like(depth, 5.0), *args[2:])  # start frames that saw no sky: nothing to take
    np.testing.assert_array_equal(dream(10.0, no_sky)[1]["rgb"], dream(0.0, no_sky)[1]["rgb"])
    with pytest.raises(WorldgenError, match="sky_above"):
        dataclasses.replace(preset("tiny"), sky_above=95.0)
    with pytest.raises(WorldgenError, match="sky_above needs geometry"):
        dataclasses.replace(preset("tiny"), geometry=False, sky_above=12.0)


def test_causality_prediction_at_t_ignores_later_frames(rollout_dataset, random_tiny_model):
    tiny_model = random_tiny_model  # non-zero weights everywhere, so a leak would show
    data = EpisodeDataset(rollout_dataset, "train")
    k = tiny_model.config.context
    batch = data.windows(2, k + 3, seed=0, step=0)
    frames = jnp.asarray(batch["frames_BTHWC"], jnp.float32)
    key = jax.random.key(0)

    def prediction(frames_f, target):
        b = dict(batch, frames_BTHWC=frames_f)
        out = teacher_forced(tiny_model, b, jnp.asarray(data.intrinsics), key)
        return out["rgb_pred"].reshape(2, 3, *out["rgb_pred"].shape[1:])[:, target].sum()

    for target in range(3):
        t = k + target  # frame index being predicted
        grad = np.asarray(jax.grad(prediction)(frames, target))
        # Frame t itself enters only as the flow-matching input (noise mixed with the target), as it must.
        assert np.all(grad[:, t + 1:] == 0), f"prediction of frame {t} depends on frames > {t}"
        assert np.abs(grad[:, t - 1]).sum() > 0  # it does use the last frame


def test_painted_only_scores_colours_only_where_a_model_that_shows_memory_paints(rollout_dataset, random_tiny_model):
    data = EpisodeDataset(rollout_dataset, "train")
    intr = jnp.asarray(data.intrinsics)
    batch = {k: jnp.asarray(v) for k, v in data.windows(2, random_tiny_model.config.context + 4, 0, 0).items()}
    model = wm.with_options(random_tiny_model, show_memory=True)
    key = jax.random.key(0)

    @nnx.jit
    def run(hidden, shown_model):
        out = teacher_forced(shown_model, batch, intr, key)
        grad = jax.grad(lambda p: painted_mse(p, out["rgb_target"], out["shown"]))(out["rgb_pred"])
        losses = [loss_fn(shown_model, batch, intr, key, painted_only=po)[1]["rgb_mse"] for po in (False, True)]
        return teacher_forced(hidden, batch, intr, key)["shown"], out["shown"], grad, losses

    hidden_shown, shown, grad, (plain, painted) = jax.device_get(run(random_tiny_model, model))
    assert not hidden_shown.any()  # a model that does not show its memory shows nothing
    assert 0.2 < shown.mean() < 1.0  # the warp of real frames knows much of each target, not all of it
    assert np.all(grad[shown] == 0) and np.abs(grad[~shown]).sum() > 0
    assert np.isfinite(painted) and painted != plain


def test_rollout_loss_trains_on_own_frames_through_memory(rollout_dataset, tiny_model, random_tiny_model):
    data = EpisodeDataset(rollout_dataset, "train")
    batch = data.windows(2, 20, seed=0, step=0)  # 2 real frames, then 18 dreamed steps
    plain, _ = loss_fn(tiny_model, batch, jnp.asarray(data.intrinsics), jax.random.key(0))
    loss, metrics = loss_fn(tiny_model, batch, jnp.asarray(data.intrinsics), jax.random.key(0), 1.0, 8)
    assert np.isfinite(float(loss)) and float(loss) > float(plain) and metrics["rollout_mse"] > 0
    # The rollout's own term trains the network (and only through the scored steps, not the rollout).
    grads = nnx.grad(lambda m: own_rollout(m, batch, jnp.asarray(data.intrinsics), jax.random.key(0), 8)[0])(
        random_tiny_model)
    stem = np.asarray(grads.unet.stem.kernel[...])
    assert np.isfinite(stem).all() and np.abs(stem).sum() > 0


def test_provenance_input_marks_real_memory_and_grafting_it_changes_nothing(rollout_start, random_tiny_model):
    data, ep, args = rollout_start
    k = random_tiny_model.config.context
    grafted = wm.with_options(random_tiny_model, provenance=True)
    assert grafted.config.provenance and wm.cond_channels(grafted.config) == 13
    plain_gen, graft_gen = Generator(random_tiny_model), Generator(grafted)
    s1, s2 = plain_gen.init(*args), graft_gen.init(*args)
    for i, a in enumerate(ep["actions"][k:k + 4]):
        s1, o1 = plain_gen.step(s1, np.array([a]), jax.random.key(i))
        s2, o2 = graft_gen.step(s2, np.array([a]), jax.random.key(i))
        np.testing.assert_array_equal(o1["rgb"], o2["rgb"])  # zero weights on the new input: same frames
    # The provenance channel: 1 where the real frames are drawn, 0 where only dreamed content is.
    state = wm.init_state(grafted.config, *map(jnp.asarray, args))
    cond, _ = wm.recall(grafted.config, state, jnp.asarray(ep["poses"][None, k - 1]))
    assert cond.shape[-1] == 13 and np.asarray(cond[..., 12]).mean() > 0.95
    dreamed = wm.advance(grafted.config, state.replace(memory=mem.empty(1, state.memory.pinned,
                                                                          state.memory.capacity - state.memory.pinned)),
                         state.last_rgb, state.last_disp, state.pose, jnp.zeros((1,) + state.last_disp.shape[1:], bool))
    cond, _ = wm.recall(grafted.config, dreamed, state.pose)
    assert np.asarray(cond[..., 4]).mean() > 0.9 and np.asarray(cond[..., 12]).max() == 0.0


def test_a_deepened_unet_makes_the_same_frames_until_trained_and_its_new_level_is_trained(rollout_start,
                                                                                          random_tiny_model):
    data, ep, args = rollout_start
    k = random_tiny_model.config.context
    deep = wm.deepen(random_tiny_model, 24)
    assert deep.config.channels == random_tiny_model.config.channels + (24,) and len(deep.unet.up_blocks) == 2
    plain_gen, deep_gen = Generator(random_tiny_model), Generator(deep)
    s1, s2 = plain_gen.init(*args), deep_gen.init(*args)
    for i, a in enumerate(ep["actions"][k:k + 4]):
        s1, o1 = plain_gen.step(s1, np.array([a]), jax.random.key(i))
        s2, o2 = deep_gen.step(s2, np.array([a]), jax.random.key(i))
        np.testing.assert_array_equal(o1["rgb"], o2["rgb"])
    # The new level's way into the output (the zero residual of its up block) gets a gradient at once.
    batch = data.windows(2, k + TEACHER_TARGETS, 0, 0)
    grads = nnx.grad(lambda m: loss_fn(m, batch, jnp.asarray(data.intrinsics), jax.random.key(0))[0])(deep)
    assert np.abs(np.asarray(grads.unet.up_blocks[1].conv2.kernel[...])).sum() > 0


def test_noise_level_input_grafts_without_change_and_is_trained_and_used(rollout_start, random_tiny_model):
    data, ep, args = rollout_start
    k = random_tiny_model.config.context
    grafted = wm.with_options(random_tiny_model, noise_level=True)
    assert grafted.config.noise_level and not random_tiny_model.config.noise_level
    s1, s2 = Generator(random_tiny_model).init(*args), Generator(grafted).init(*args)
    _, o1 = Generator(random_tiny_model).step(s1, np.array([1]), jax.random.key(0))
    _, o2 = Generator(grafted).step(s2, np.array([1]), jax.random.key(0))
    np.testing.assert_array_equal(o1["rgb"], o2["rgb"])  # a zero-weighted new input: the same frames
    with pytest.raises(WorldgenError, match="unknown model options"):
        wm.with_options(random_tiny_model, colour=True)
    # The teacher-forced loss reaches the new layer, and once it has weights the noise level changes the output.
    batch = data.windows(2, k + 4, 0, 0)
    grads = nnx.grad(lambda m: loss_fn(m, batch, jnp.asarray(data.intrinsics), jax.random.key(1))[0])(grafted)
    assert np.abs(np.asarray(grads.noise_mlp.kernel[...])).sum() > 0
    grafted.noise_mlp.kernel[...] = jax.random.normal(jax.random.key(2), grafted.noise_mlp.kernel.shape)
    cond, _ = wm.recall(grafted.config, wm.init_state(grafted.config, *map(jnp.asarray, args)), s2.pose)
    x, t, a = jnp.zeros(cond.shape[:3] + (3,)), jnp.full((1,), 0.5), jnp.array([1])
    clean = grafted.denoise(x, t, cond, a)[0]
    np.testing.assert_array_equal(clean, grafted.denoise(x, t, cond, a, jnp.zeros((1,)))[0])
    assert float(jnp.abs(clean - grafted.denoise(x, t, cond, a, jnp.full((1,), 0.1))[0]).max()) > 1e-3


def test_shapes_with_and_without_jit(rollout_dataset, tiny_model):
    data = EpisodeDataset(rollout_dataset, "train")
    ep = data.episode(0)
    k, res = tiny_model.config.context, tiny_model.config.resolution
    args = (ep["frames"][None, :k], ep["depth"][None, :k].astype(np.float32), ep["poses"][None, :k],
            data.intrinsics)
    state = wm.init_state(tiny_model.config, *map(jnp.asarray, args))
    eager_state, eager = wm.step(tiny_model, state, jnp.array([1]), jax.random.key(3))
    gen = Generator(tiny_model)
    jit_state, jitted = gen.step(gen.init(*args), np.array([1]), jax.random.key(3))
    assert eager["rgb"].shape == (1, res, res, 3) and eager["rgb"].dtype == jnp.uint8
    assert eager["depth"].shape == (1, res, res) and eager["pose"].shape == (1, 4, 4)
    assert jax.tree.map(jnp.shape, eager_state) == jax.tree.map(jnp.shape, jit_state)
    assert np.abs(np.asarray(eager["rgb"], int) - np.asarray(jitted["rgb"], int)).max() <= 1
    assert np.allclose(eager["pose"], jitted["pose"], atol=1e-4)


def test_the_compile_options_change_frames_only_by_rounding_and_an_xla_without_them_compiles_as_before(
        rollout_start, random_tiny_model, monkeypatch):
    import re

    from worldgen import xla
    _, _, args = rollout_start
    gen = Generator(random_tiny_model)  # its step goes through worldgen.xla.jit
    plain = jax.jit(lambda leaves, st, a, key: wm.step(nnx.merge(gen.graphdef, jax.tree.unflatten(
        jax.tree.structure(gen.params), leaves)), st, a, key))
    state = gen.init(*args)
    ours, theirs = state, state
    for i in range(3):
        a, key = np.array([i % 3 + 1], np.int32), jax.random.key(i)
        ours, out = gen.step(ours, a, key)
        theirs, ref = plain(gen.param_leaves, theirs, jnp.asarray(a), key)
        rgb = np.abs(np.asarray(out["rgb"], int) - np.asarray(ref["rgb"], int))  # sums in another order: rounding
        assert rgb.max() <= 2 and (rgb > 0).mean() < 0.05
        np.testing.assert_allclose(np.asarray(out["pose"]), np.asarray(ref["pose"]), atol=1e-3)  # metres
    if xla.compiler_options():  # this XLA knows the option: no reduction is handed to YNNPACK
        text = gen._step.lower(gen.param_leaves, state, jnp.ones(1, jnp.int32), jax.random.key(0),
                               *gen.camera(state, None, (1,))).compile().as_text()
        ynn = r'op_name="[^"]*/(\w+)"[^}]*\}, backend_config=\{"fusion_config":\{"kind":"__ynn_fusion"'
        assert not [op for op in re.findall(ynn, text) if op.startswith("reduce")]
    monkeypatch.setattr(xla, "CPU_OPTIONS", {"xla_cpu_no_such_option": "1"})
    xla.compiler_options.cache_clear()
    try:
        assert xla.compiler_options() == {}
        assert int(xla.jit(lambda x: x + 1)(jnp.int32(1))) == 2
    finally:
        xla.compiler_options.cache_clear()


def test_batched_rollout_and_bad_actions(rollout_dataset, tiny_model):
    data = EpisodeDataset(rollout_dataset, "all")
    k = tiny_model.config.context
    gen = Generator(tiny_model)
    a = data.arrays
    state = gen.init(a["frames"][:3, :k], a["depth"][:3, :k], a["poses"][:3, :k], data.intrinsics)
    _, out = gen.rollout(state, a["actions"][:3, k:k + 5], jax.random.key(0))
    assert out["rgb"].shape == (3, 5, 32, 32, 3) and out["pose"].shape == (3, 5, 4, 4)
    with pytest.raises(WorldgenError, match="actions must be in 0..6"):
        gen.step(state, np.array([7, 0, 0]), jax.random.key(0))


def test_dream_from_an_image_of_any_size(tiny_model):
    gen = Generator(tiny_model)
    image = np.random.default_rng(0).integers(0, 255, (77, 120, 3), dtype=np.uint8)
    state = gen.from_image(image)
    state, out = gen.step(state, np.array([int(Action.FORWARD)]), jax.random.key(1))
    assert out["rgb"].shape == (1, 32, 32, 3)


def test_plain_2d_model_runs_without_geometry():
    model = wm.WorldModel(preset("tiny", geometry=False, num_actions=5), rngs=nnx.Rngs(0))
    gen = Generator(model)
    frames = np.random.default_rng(0).integers(0, 255, (2, 2, 32, 32, 3), dtype=np.uint8)
    _, out = gen.rollout(gen.init(frames), np.zeros((2, 3), np.int32), jax.random.key(0))
    assert out["rgb"].shape == (2, 3, 32, 32, 3) and float(out["coverage"].max()) == 0.0
    batch = {"frames_BTHWC": np.repeat(frames, 3, axis=1), "actions_BT": np.zeros((2, 6), np.int32)}
    loss, metrics = loss_fn(model, batch, jnp.eye(3), jax.random.key(0))
    assert np.isfinite(float(loss)) and "pose_mse" not in metrics


def test_config_validation():
    with pytest.raises(WorldgenError, match="resolution = 50"):
        ModelConfig(resolution=50)
    with pytest.raises(WorldgenError, match="unknown model preset 'huge'"):
        preset("huge")
    cfg = preset("small")
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    assert dataclasses.replace(cfg, num_actions=5).num_actions == 5


def test_bundled_model_loads_and_steps():
    from worldgen.model.store import BUNDLED, load_model
    import json
    model = load_model("bundled")
    assert model.config.resolution == 64 and model.config.num_actions == 7 and model.config.geometry
    metrics = json.loads((BUNDLED / "metrics.json").read_text())
    assert metrics["n_episodes"] >= 16 and set(metrics["psnr"]) == {"1", "4", "8", "16", "32"}
    size = sum(f.stat().st_size for f in BUNDLED.rglob("*") if f.is_file())
    assert size < 50e6
    gen = Generator(model)
    _, out = gen.step(gen.from_image(np.zeros((80, 60, 3), np.uint8)), np.array([1]), jax.random.key(0))
    assert out["rgb"].shape == (1, 64, 64, 3)

"""The long walks of `worldgen eval`: their routes, the held key, several sampling keys, and the figures
each span reports (pooled PSNR, error sources, the spread over walks, stopped moves, shown obstacles)."""
import numpy as np
import pytest

from worldgen.errors import WorldgenError


def test_revisit_routes_go_out_and_come_back_to_the_real_start_frame():
    """Each route is 16 moves and their inverses; a world takes one that no obstacle blocks, so its truth at
    the end is the start frame itself."""
    from training.long_walk import REVISIT_ROUTES, render_revisits, render_walks
    from worldgen.actions import INVERSE
    for route in REVISIT_ROUTES:
        assert len(route) == 32 and all(INVERSE[a] == b for a, b in zip(route[:16], reversed(route[16:])))
    routes, ends, back, cameras = render_revisits(32, 3, 2)
    frames, _, poses = render_walks(32, 3, 10, 2)[:3]
    assert routes.shape == (3, 32) and back.sum() >= 2 and cameras.shape == (3, 32, 4, 4)
    assert all(np.array_equal(ends[i], frames[i, 1]) for i in range(3) if back[i])
    # the player's camera along the route (what a followed dream is given): out and back to the start pose
    assert all(np.allclose(cameras[i, -1], poses[i, 1], atol=1e-4) for i in range(3) if back[i])
    assert all(not np.allclose(cameras[i, 15], poses[i, 1], atol=0.1) for i in range(3) if back[i])


def test_a_held_key_walk_starts_as_the_viewer_does_and_then_holds_the_key_as_the_player_would():
    """`long_walk(..., hold=FORWARD)` (a user holding W): the viewer's start (`WorldEnv.look_around` at the spawn
    of episode 0), then the key held; the heading stays, and each step moves the eye at most one stride on the
    ground (a whole one where nothing is in the way, less where the player slides along or stops at a wall)."""
    from training.long_walk import SEEDS, render_revisits, render_walks
    from worldgen.actions import Action
    from worldgen.env import WorldEnv
    from worldgen.player import MOVE_STEP
    frames, _, poses, actions, _, _ = render_walks(32, 2, 20, 2, hold=Action.FORWARD)
    _, ends, back, _ = render_revisits(32, 2, 2, held=True)  # a held walk's revisit starts where its start does
    assert back.any() and all(np.array_equal(ends[i], frames[i, 1]) for i in range(2) if back[i])
    with WorldEnv(32, task=None) as env:
        env.reset(seed=SEEDS[1], options={"episode": 0})
        start = env.look_around(2)
    assert all(np.array_equal(frames[1, i], start[i]["rgb"]) for i in range(2))
    assert (actions[:, 2:] == Action.FORWARD).all() and (actions[:, :2] == Action.NOOP).all()
    np.testing.assert_allclose(poses[:, 2:, :3, :3], np.broadcast_to(poses[:, 1:2, :3, :3], (2, 20, 3, 3)), atol=1e-5)
    moved = np.linalg.norm(np.diff(poses[:, 1:, [0, 2], 3], axis=1), axis=-1)
    assert (moved <= MOVE_STEP + 1e-4).all() and np.isclose(moved, MOVE_STEP, atol=1e-4).any()


def test_varied_walks_are_the_worlds_record_vary_records():
    """`long_walk(..., vary=True)` walks each unseen world of its own random description, as `record --vary`
    would record it: the same frames, and not the default spec's."""
    from training.long_walk import SEEDS, render_walks
    from worldgen.describe import varied_spec
    from worldgen.env import WorldEnv
    from worldgen.record import record_episode
    frames = render_walks(32, 2, 10, 2, vary=True)[0]
    with WorldEnv(32, task=None, spec=varied_spec(SEEDS[1])) as env:
        assert np.array_equal(frames[1], record_episode(env, SEEDS[1], 0, 12)[0])
    assert not np.array_equal(frames, render_walks(32, 2, 10, 2)[0])


def test_long_walks_dreamed_with_several_keys_pool_the_keys_as_more_walks(random_tiny_model):
    """`long_walk(..., keys=2)` dreams each walk with the sampling keys seed and seed + 1 and pools both dreams as
    if each walk were walked twice: each walk's stats are the mean of the two one-key runs', the per-step
    figures are pooled over both, and the filmstrip's dream is the first key's."""
    from training import metrics as M
    from training.long_walk import _psnr, long_walk, render_walks
    from worldgen.model.runner import Generator
    gen = Generator(random_tiny_model)
    walks = render_walks(32, 2, 10, 2)
    (a, a_arrays), (b, b_arrays) = (long_walk(gen, 2, 10, seed=s, keys=1, walks=walks) for s in (5, 6))
    both, arrays = long_walk(gen, 2, 10, seed=5, keys=2, walks=walks)
    assert both["keys"] == 2 and not np.array_equal(a_arrays["pred"], b_arrays["pred"])  # the keys dream apart
    np.testing.assert_array_equal(arrays["pred"], a_arrays["pred"])
    for name in ("mse", "copy_mse", "energy", "true_energy"):
        np.testing.assert_allclose(arrays["stats"][name], (a_arrays["stats"][name] + b_arrays["stats"][name]) / 2)
    mse = np.concatenate([a_arrays["stats"]["mse"], b_arrays["stats"]["mse"]]).mean(0)  # over both dreams of both walks
    np.testing.assert_allclose(both["per_step"]["psnr"], _psnr(mse))
    for name in ("colour_distance", "camera_off_m", "copy_last_psnr", "shown_psnr", "shown_colour_distance"):
        np.testing.assert_allclose(both["per_step"][name], np.add(a["per_step"][name], b["per_step"][name]) / 2)
    truth, shown = walks[0][:, -10:], walks[5]  # the shown reference's colours against the truth of its own step
    assert both["per_step"]["shown_colour_distance"] == pytest.approx(
        [M.colour_distance(shown[:, t], truth[:, t]) for t in range(10)])
    assert both["stopped"]["dream"] == pytest.approx((a["stopped"]["dream"] + b["stopped"]["dream"]) / 2, abs=0.05)
    assert both["stopped"]["truth"] == a["stopped"]["truth"] and both["revisit_psnr"] == a["revisit_psnr"]
    assert both["stopped"]["freeze_most"] == max(a["stopped"]["freeze_most"], b["stopped"]["freeze_most"])
    assert both["stopped"]["dreams"] == 2 * a["stopped"]["dreams"] == 4
    with pytest.raises(WorldgenError, match="1..8 sampling keys, got 0"):
        long_walk(gen, 2, 10, keys=0, walks=walks)


def test_a_followed_walk_dreams_each_frame_at_the_players_camera(random_tiny_model):
    """`long_walk(..., follow=True)`: the dream is given the player's camera at every step, so it is never off
    and stops exactly where the player does, while its own camera head (random weights) wanders off; the frames
    are still the dream's, and the report says which camera it walked."""
    import jax
    from training.long_walk import long_walk, render_walks
    from worldgen.actions import Action
    from worldgen.model.runner import Generator
    gen = Generator(random_tiny_model)
    walks = render_walks(32, 2, 10, 2, hold=Action.FORWARD)
    own, own_arrays = long_walk(gen, 2, 10, keys=1, walks=walks)
    followed, arrays = long_walk(gen, 2, 10, keys=1, walks=walks, follow=True)
    assert max(followed["per_step"]["camera_off_m"]) < 1e-4 < max(own["per_step"]["camera_off_m"])
    assert followed["stopped"]["dream"] == followed["stopped"]["both"] == followed["stopped"]["truth"]
    assert (followed["camera"], own["camera"]) == ("the player's (followed)", "the dream's own")
    assert not np.array_equal(arrays["pred"], own_arrays["pred"]) and arrays["pred"].shape == (2, 10, 32, 32, 3)
    frames, depth, poses, actions, intr, _ = walks  # given the poses its own head chose: the same frames
    state, key = gen.init(frames[:, :2], depth[:, :2], poses[:, :2], intr), jax.random.key(0)
    own = gen.rollout(state, actions[:, 2:], key)[1]
    given = gen.rollout(state, actions[:, 2:], key, np.asarray(own["pose"]))[1]
    np.testing.assert_array_equal(given["rgb"], own["rgb"])


def test_pooled_psnr_over_selected_pixels():
    from training.metrics import PSNR_CAP, pooled_psnr
    true = np.zeros((2, 4, 4, 3), np.uint8)
    pred = true.copy()
    pred[1, 0, 0] = 255  # one wrong pixel of 32
    where = np.ones((2, 4, 4), bool)
    assert pooled_psnr(pred, true, where) == pytest.approx(pooled_psnr(pred, true)) == pytest.approx(10 * np.log10(32))
    where[1, 0, 0] = False
    assert pooled_psnr(pred, true, where) == PSNR_CAP == pooled_psnr(pred, true, np.zeros_like(where))
    assert pooled_psnr(pred, true, ~where) == pytest.approx(0.0)


def test_error_sources_split_the_error_by_what_memory_knew():
    """`error_sources`: per span, each source's share of the pixels and of the squared error, and its PSNR."""
    from training.long_walk import error_sources
    from training.metrics import PSNR_CAP
    truth = np.zeros((1, 12, 4, 4, 3), np.uint8)
    pred = truth.copy()
    source = np.zeros((1, 12, 4, 4), np.uint8)  # real everywhere but one dreamed and one unknown pixel a step
    source[:, :, 0, 0], source[:, :, 0, 1] = 1, 3
    pred[:, :, 0, 0], pred[:, :, 0, 1] = 255, 85  # squared errors 255^2 and 85^2 (a ninth of it)
    table, per_step = error_sources(pred, truth, source)
    assert list(table) == ["1-10", "11-12"] and list(per_step) == ["real", "dreamed", "magnified", "unknown"]
    first = table["1-10"]
    assert first["real"] == {"pixels": 14 / 16, "error": 0.0, "psnr": pytest.approx(PSNR_CAP)}  # no error
    assert first["dreamed"]["pixels"] == 1 / 16 and first["dreamed"]["error"] == pytest.approx(0.9)
    assert first["dreamed"]["psnr"] == pytest.approx(0.0) and first["unknown"]["error"] == pytest.approx(0.1)
    assert first["magnified"] == {"pixels": 0.0, "error": 0.0, "psnr": None}
    assert per_step["dreamed"] == pytest.approx([0.9] * 12) and per_step["real"] == [0.0] * 12


def test_the_long_walks_spread_over_walks_and_two_dreams_compared_on_the_same_walks():
    """`walk_stats` and `pooled_figures` give the table's pooled gain over copy-last and sharpness from each walk's
    share; `jackknife_se` is their spread over walks (none where every walk moves alike); `paired_text` compares two
    dreams of the same walks."""
    from training import metrics as M
    from training.long_walk import jackknife_se, pooled_figures, walk_stats
    from training.long_walk_report import paired_text
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 256, (3, 12, 8, 8, 3)).astype(np.uint8)
    last = np.clip(truth[:, 0].astype(int) + 40, 0, 255).astype(np.uint8)
    pred = np.clip(truth.astype(int) + rng.integers(-30, 31, truth.shape), 0, 255).astype(np.uint8)
    stats = walk_stats(pred, truth, last)
    figures = pooled_figures(stats, np.ones(3, bool))
    for (lo, hi), (gain, sharp) in zip(((1, 10), (11, 12)), figures):  # as the table pools them
        t = range(lo - 1, hi)
        assert gain == pytest.approx(np.mean([M.pooled_psnr(pred[:, i], truth[:, i]) - M.pooled_psnr(last, truth[:, i])
                                              for i in t]))
        assert sharp == pytest.approx(np.mean([M.sharpness_ratio(pred[:, i], truth[:, i]) for i in t]))
    se = jackknife_se(stats)
    assert se.shape == (2, 2) and (se > 0).all()
    halved = {**stats, "mse": stats["mse"] / 2}  # every walk's error halved: +3.01 dB on every subset of walks
    np.testing.assert_allclose(pooled_figures(halved, np.ones(3, bool))[:, 0] - figures[:, 0], 10 * np.log10(2))
    np.testing.assert_allclose(jackknife_se(halved, stats), 0, atol=1e-9)
    one = {**stats, "mse": stats["mse"] * np.array([0.5, 1, 1])[:, None]}  # one walk better: a spread
    assert jackknife_se(one, stats)[0, 0] > 0.1
    walks = {"seeds": [1, 2, 3], "steps": 12, "actions": "explorer", "walks": 3}
    text = paired_text(walks, walks, stats, halved, "a", "b")
    assert "b against a on the same 3 walks" in text and "+3.01±0.00 (3/3)" in text and "+0.000±0.000" in text
    with pytest.raises(WorldgenError, match="walked different worlds"):
        paired_text(walks, {**walks, "seeds": [4, 5, 6]}, stats, halved, "a", "b")
    with pytest.raises(WorldgenError, match="different sampling keys"):
        paired_text(walks, {**walks, "keys": 3}, stats, halved, "a", "b")


def test_stopped_moves_are_moves_that_left_the_eye_in_place():
    from training.long_walk import stopped_moves
    from worldgen.actions import Action
    x = [0.0, 0.5, 0.5, 0.5, 0.505, 0.505]  # the eye's x before and after each of five steps
    poses = np.broadcast_to(np.eye(4, dtype=np.float32), (1, 6, 4, 4)).copy()
    poses[0, :, 0, 3] = x
    actions = np.array([[Action.FORWARD, Action.FORWARD, Action.TURN_LEFT, Action.STRAFE_LEFT, Action.NOOP]])
    got = stopped_moves(poses[:, 1:], poses[:, 0], actions)
    assert got.tolist() == [[False, True, False, True, False]]  # a turn or a noop is not a stopped move


def test_shown_obstacles_are_what_the_real_frames_show():
    """The long walk's "shown" reference: the world with only the obstacles some start frame shows renders those
    frames unchanged, most of those obstacles, taken away, change them, and a camera turned half round shows
    other obstacles."""
    from training.long_walk import SEEDS, shown_obstacles
    from worldgen.env import WorldEnv
    from worldgen.record import record_episode
    with WorldEnv(32, task=None) as env:
        frames, depth, _, poses, _, _ = record_episode(env, SEEDS[1], 0, 3)
        depth, world = depth.astype(np.float32), env.world
        shown = shown_obstacles(world, depth, poses, env.intrinsics)
        near = set(world.obstacles_near(poses[0, 0, 3], poses[0, 2, 3], 1.5 * world.spec.view_distance))
        assert shown < near and len(shown) < len(near) / 4
        for t in range(3):
            assert np.array_equal(env.renderer.render(world.only(shown), poses[t]).rgb_HWC, frames[t])
        matter = [any(not np.array_equal(env.renderer.render(world.only(shown - {ob}), poses[t]).rgb_HWC, frames[t])
                      for t in range(3)) for ob in shown]
        assert sum(matter) >= len(shown) / 2
        front = shown_obstacles(world, depth[:1], poses[:1], env.intrinsics)
        behind = poses[:1] @ np.diag([-1.0, 1.0, -1.0, 1.0])  # the first camera turned half round
        back = shown_obstacles(world, env.renderer.render(world, behind[0]).depth_HW[None], behind, env.intrinsics)
        assert front and back and front.isdisjoint(back)


def test_the_longest_freeze_is_the_longest_run_of_steps_the_dream_stood_still_where_the_player_walked_on():
    from training.long_walk import longest_freeze
    dream = np.array([[1, 1, 0, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0, 0]], bool)
    truth = np.array([[0, 0, 0, 0, 1, 0, 0], [1, 1, 1, 1, 0, 0, 0]], bool)  # a stop the player made too is no freeze
    assert longest_freeze(dream, truth).tolist() == [2, 0]

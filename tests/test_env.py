"""The engine environment (gymnasium) and the navigation task both environments share."""
import gymnasium
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from worldgen import task as nav
from worldgen.actions import Action
from worldgen.env import ENV_ID, WorldEnv, make_vector_env
from worldgen.errors import WorldgenError
from worldgen.player import camera_pose, start_rng
from worldgen.policy import explore
from worldgen.record import record_episode
from worldgen.spec import WorldSpec
from worldgen.world import World


@pytest.fixture(scope="module")
def env():
    e = WorldEnv(32, render_mode="rgb_array")
    yield e
    e.close()


def test_passes_gymnasium_env_checker():
    e = gymnasium.make(ENV_ID, resolution=32, render_mode="rgb_array")
    check_env(e.unwrapped)
    e.close()


def test_reset_is_the_recorders_start(env):
    """reset(seed) is world `seed` seen from the spawn that `worldgen record` starts its first episode at."""
    obs, info = env.reset(seed=5)
    with WorldEnv(32, task=None, renderer=env.renderer) as free:
        frames, depth, _, poses, _, _ = record_episode(free, 5, 0, 1)
    np.testing.assert_array_equal(obs["rgb"], frames[0])
    np.testing.assert_allclose(obs["pose"], poses[0])
    assert info["world_seed"] == 5 and info["distance"] >= 3.0
    again, _ = env.reset(seed=5)
    np.testing.assert_array_equal(again["goal"], obs["goal"])


def test_recorded_episodes_are_the_explorers_walk_rendered():
    """The recorder walks the env with the explorer drawing from the episode's stream after the spawn: the same
    states as the physics-only walk (`policy.explore`), each rendered from the player's eye."""
    with WorldEnv(32, task=None) as free:
        frames, depth, actions, poses, blocked, moves = record_episode(free, 7, 2, 40)
        walk = list(explore(World(7), start_rng(7, 2), 40))
        assert [int(a) for _, a, _ in walk] == actions.tolist()
        turns = (Action.NOOP, Action.TURN_LEFT, Action.TURN_RIGHT)
        assert sum(b for _, a, b in walk if a not in turns) == blocked and moves > 0
        for t in (0, 17, 39):
            truth = free.renderer.render(free.world, camera_pose(free.world, walk[t][0]))
            np.testing.assert_array_equal(frames[t], truth.rgb_HWC)
            np.testing.assert_allclose(poses[t], truth.pose)


def test_free_walk_has_no_task_and_place_moves_the_player():
    with WorldEnv(32, task=None) as free:
        assert "goal" not in free.observation_space.spaces
        obs, info = free.reset(seed=3)
        assert set(obs) == {"rgb", "depth", "pose"} and "distance" not in info
        start, world = free.player, free.world
        for _ in range(5):
            _, reward, terminated, truncated, _ = free.step(Action.FORWARD)
            assert (reward, terminated, truncated) == (0.0, False, False)
        assert free.reset(seed=3)[0]["pose"].tolist() == obs["pose"].tolist() and free.world is world  # reused
        np.testing.assert_array_equal(free.place(start)["rgb"], obs["rgb"])
        with pytest.raises(WorldgenError, match="free walk"):
            free.reset(seed=3, options={"goal": (1.0, 2.0)})
        with pytest.raises(WorldgenError, match="seed"):
            free.reset(seed=-4)
        assert free.world is world  # a refused seed changed nothing


def test_look_around_sees_both_sides_then_ahead_and_leaves_the_player_as_it_was():
    """The real start frames of a dream in the viewer and on held walks: one turn to the right, to the left, then
    straight ahead, each a frame from where the player stands; the player keeps its place and heading."""
    from worldgen.player import TURN_STEP
    with WorldEnv(32, task=None) as free:
        with pytest.raises(WorldgenError, match="reset"):
            free.look_around(4)
        obs, _ = free.reset(seed=3)
        here = free.player
        views = free.look_around(4)
        assert free.player == here and len(views) == 4
        for v in views[2:]:
            np.testing.assert_array_equal(v["rgb"], obs["rgb"])
        forward = lambda v: np.arctan2(-v["pose"][0, 2], -v["pose"][2, 2])  # yaw of the camera's heading
        turned = [(forward(v) - forward(obs) + np.pi) % (2 * np.pi) - np.pi for v in views[:2]]
        np.testing.assert_allclose(turned, [-TURN_STEP, TURN_STEP], atol=1e-5)
        assert all(np.allclose(v["pose"][:3, 3], obs["pose"][:3, 3]) for v in views)
        assert not np.array_equal(views[0]["rgb"], views[1]["rgb"])
        assert len(free.look_around(1)) == 1 and np.array_equal(free.look_around(1)[0]["rgb"], obs["rgb"])
        for bad in (0, -2, True, 2.5):
            with pytest.raises(WorldgenError, match="number of views"):
                free.look_around(bad)


def test_walking_to_a_goal_ahead_is_rewarded_and_terminates(env):
    obs, _ = env.reset(seed=5)
    pose = obs["pose"]
    forward = -pose[[0, 2], 2] / np.linalg.norm(pose[[0, 2], 2])
    goal = pose[[0, 2], 3] + 2.6 * forward  # 2.6 m straight ahead: three 0.5 m steps bring it within 1.5 m
    obs, info = env.reset(seed=5, options={"goal": goal})
    np.testing.assert_allclose(obs["goal"], [2.6, 0.0], atol=1e-4)
    rewards, done = [], []
    for _ in range(3):
        obs, r, terminated, truncated, info = env.step(Action.FORWARD)
        assert not info["blocked"] and not truncated
        rewards.append(r)
        done.append(terminated)
    assert done == [False, False, True]
    assert 0.4 < rewards[0] < 0.6 and rewards[2] > nav.SUCCESS
    _, r, _, _, _ = env.step(Action.TURN_LEFT)
    assert r == pytest.approx(-nav.STEP_COST + nav.SUCCESS)  # no progress, still at the goal
    assert env.render().shape == (32, 32, 3)


def test_time_limit_truncates():
    e = WorldEnv(32, task=nav.TaskConfig(horizon=3))
    e.reset(seed=1)
    flags = [e.step(Action.NOOP)[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]
    e.close()


def test_vector_env_steps_every_world():
    v = make_vector_env(3, 32)
    obs, info = v.reset(seed=0)
    assert obs["rgb"].shape == (3, 32, 32, 3) and list(info["world_seed"]) == [0, 1, 2]
    obs, reward, terminated, truncated, _ = v.step(np.array([1, 3, 0]))
    assert reward.shape == (3,) and obs["pose"].shape == (3, 4, 4)
    assert not np.array_equal(obs["rgb"][0], obs["rgb"][1])
    v.close()


def test_task_is_the_same_in_numpy_and_jax():
    rng = np.random.default_rng(0)
    poses = np.tile(np.eye(4, dtype=np.float32), (5, 1, 1))
    yaw = rng.uniform(-np.pi, np.pi, 5)
    poses[:, 0, 0], poses[:, 0, 2], poses[:, 2, 0], poses[:, 2, 2] = np.cos(yaw), np.sin(yaw), -np.sin(yaw), np.cos(yaw)
    poses[:, [0, 2], 3] = rng.normal(0, 5, (5, 2))
    prev = poses[::-1].copy()
    goal = rng.normal(0, 5, (5, 2)).astype(np.float32)
    for f in (lambda *a: nav.reward(*a, 1.5)[0], lambda p, q, g: nav.goal_vector(q, g)[0],
              lambda p, q, g: nav.goal_vector(q, g)[1]):
        np.testing.assert_allclose(np.asarray(f(jnp.asarray(prev), jnp.asarray(poses), jnp.asarray(goal))),
                                   f(prev, poses, goal), rtol=1e-5, atol=1e-5)
    ahead, right = nav.goal_vector(poses, goal)
    np.testing.assert_allclose(ahead ** 2 + right ** 2, nav.distance(poses, goal) ** 2, rtol=1e-4)


@pytest.mark.parametrize("action, words", [(99, "action 99"), (-1, "action -1"), (1.5, "action 1.5"),
                                           ("forward", "action 'forward'"), (True, "action True")])
def test_bad_action_is_a_clear_error(env, action, words):
    env.reset(seed=0)
    with pytest.raises(WorldgenError, match=words):
        env.step(action)


@pytest.mark.parametrize("goal, words", [((1000.0, 0.0), "outside the world"), ((np.nan, 0.0), "finite"),
                                         ("north", "expected"), ((1.0, 2.0, 3.0), "two finite")])
def test_bad_goal_is_a_clear_error(goal, words):
    e = WorldEnv(32, spec=WorldSpec(world_size=64.0))
    with pytest.raises(WorldgenError, match=words):
        e.reset(seed=0, options={"goal": goal})
    e.close()


def test_goal_inside_an_obstacle_is_refused(env):
    world = World(0)
    ob = next(o for o in world.obstacles_near(0.0, 0.0, 40.0) if max(o.hx, o.hz) > 0.2)
    with pytest.raises(WorldgenError, match="inside an obstacle"):
        env.reset(seed=0, options={"goal": (ob.x, ob.z)})


def test_bad_config_and_options_are_clear_errors():
    with pytest.raises(WorldgenError, match="goal_steps"):
        nav.TaskConfig(goal_steps=0)
    with pytest.raises(WorldgenError, match="horizon"):
        nav.TaskConfig(horizon=2.5)
    with pytest.raises(WorldgenError, match="unknown reset options"):
        WorldEnv(32).reset(seed=0, options={"gaol": (1, 2)})
    with pytest.raises(WorldgenError, match="render_mode"):
        WorldEnv(32, render_mode="human")

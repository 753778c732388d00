"""The dream env: pure JAX, jit and vmap agree with plain calls, auto-reset, and clear errors."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from worldgen import task as nav
from worldgen.dream_env import DreamEnv, DreamParams, starts_from_data
from worldgen.errors import WorldgenError
from worldgen.model.config import preset
from worldgen.model.world_model import WorldModel


@pytest.fixture(scope="module")
def env(tiny_dataset, random_tiny_model):
    return DreamEnv(random_tiny_model, starts_from_data(tiny_dataset, 2, nav.TaskConfig(goal_steps=4)))


def test_starts_come_from_training_worlds_with_reachable_goals(env, tiny_dataset):
    s = env.starts
    assert env.num_starts >= 2 and s.frames_SKHWC.shape[1:] == (2, 32, 32, 3)
    start_xz = np.asarray(s.poses_SK44[:, -1][:, [0, 2], 3])
    assert (np.linalg.norm(np.asarray(s.goals_S2) - start_xz, axis=1) > 0).all()
    assert env.num_starts <= 6  # worlds 1..3, two episodes each; world 0 is held out
    assert starts_from_data(tiny_dataset, 2, nav.TaskConfig(goal_steps=4), split="heldout").goals_S2.shape[0] <= 2
    with pytest.raises(WorldgenError, match="no step after 12 real frames"):
        starts_from_data(tiny_dataset, 12)


def test_recorded_goal_follows_the_engine_rule():
    walk = np.array([[0, 0], [0, 1], [0, 2], [0, 2.5], [0, 3.5], [0, 4]], float)
    assert nav.goal_index(walk, 0, 2) == 4  # step 2 is only 2 m away: walked on to the first place 3 m away
    assert nav.goal_index(walk, 1, 1) == 5  # from z = 1, z = 4 is the first place 3 m away
    assert nav.goal_index(walk[:3], 0, 1) == 2  # never 3 m away: the farthest place
    assert nav.goal_index(np.zeros((5, 2)), 0, 1) is None


def test_jit_and_vmap_agree_with_plain_calls(env):
    params = env.default_params
    keys = jax.random.split(jax.random.key(0), 2)
    obs, state = env.reset(keys[0], params)
    obs2, state2, reward, done, info = env.step(keys[1], state, 1, params)
    jitted = jax.jit(env.step)(keys[1], state, jnp.int32(1), params)
    np.testing.assert_array_equal(np.asarray(jitted[0]["rgb"]), np.asarray(obs2["rgb"]))
    np.testing.assert_allclose(float(jitted[2]), float(reward), atol=1e-5)
    batch_keys = jax.random.split(jax.random.key(1), 3)
    obs_b, state_b = jax.vmap(env.reset, in_axes=(0, None))(batch_keys, params)
    assert obs_b["rgb"].shape == (3, 32, 32, 3) and obs_b["goal"].shape == (3, 2)
    step_keys = jax.random.split(jax.random.key(2), 3)
    actions = jnp.array([1, 3, 5])
    out_b = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))(step_keys, state_b, actions, params)
    for i in range(3):
        _, s_i = env.reset(batch_keys[i], params)
        o_i, _, r_i, d_i, _ = env.step(step_keys[i], s_i, int(actions[i]), params)
        # one compiled program for the batch, another per call: their floats may round a pixel to the next
        # 8-bit level, never more (another batch element's frame differs almost everywhere)
        off = np.abs(np.asarray(out_b[0]["rgb"][i], np.int16) - np.asarray(o_i["rgb"], np.int16))
        assert off.max() <= 1 and (off > 0).mean() < 0.01, (off.max(), (off > 0).mean())
        np.testing.assert_allclose(np.asarray(out_b[0]["pose"][i]), np.asarray(o_i["pose"]), atol=1e-5)
        np.testing.assert_allclose(float(out_b[2][i]), float(r_i), atol=1e-5)
        assert bool(out_b[3][i]) == bool(d_i)


def test_a_rollout_is_one_scan_and_episodes_reset_themselves(env):
    params = DreamParams(horizon=3, goal_radius=0.01)  # never reached: every episode ends by the time limit
    obs, state = env.reset(jax.random.key(0), params)

    def body(carry, key):
        state = carry
        obs, state, reward, done, info = env.step(key, state, jnp.int32(1), params)
        return state, (done, info["truncated"], state.t, reward)

    _, (done, truncated, t, reward) = jax.jit(lambda s, k: jax.lax.scan(body, s, k))(
        state, jax.random.split(jax.random.key(3), 7))
    assert np.asarray(done).tolist() == [False, False, True, False, False, True, False]
    assert np.asarray(truncated).tolist() == np.asarray(done).tolist()
    assert np.asarray(t).tolist() == [1, 2, 0, 1, 2, 0, 1]  # the state after a done step is a fresh episode
    assert np.isfinite(np.asarray(reward)).all()


def test_reaching_the_goal_terminates(env):
    params = DreamParams(goal_radius=1000.0)  # any step ends within reach
    _, state = env.reset(jax.random.key(0), params)
    _, _, reward, done, info = env.step(jax.random.key(1), state, 0, params)
    assert bool(done) and bool(info["reached"]) and not bool(info["truncated"])
    assert float(reward) > nav.SUCCESS - 1 and float(info["discount"]) == 0.0


def test_bad_input_is_a_clear_error(env, tiny_dataset):
    _, state = env.reset(jax.random.key(0), env.default_params)
    with pytest.raises(WorldgenError, match="action 99"):
        env.step(jax.random.key(1), state, 99, env.default_params)
    starts = env.starts
    other = WorldModel(dataclasses.replace(preset("tiny"), num_actions=9), rngs=nnx.Rngs(0))
    with pytest.raises(WorldgenError, match="9 actions"):
        DreamEnv(other, starts)
    flat = WorldModel(dataclasses.replace(preset("tiny"), geometry=False), rngs=nnx.Rngs(0))
    with pytest.raises(WorldgenError, match="geometry"):
        DreamEnv(flat, starts)
    wider = WorldModel(dataclasses.replace(preset("tiny"), resolution=64), rngs=nnx.Rngs(0))
    with pytest.raises(WorldgenError, match="32x32"):
        DreamEnv(wider, starts)

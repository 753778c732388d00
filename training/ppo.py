"""PPO for the navigation task, in the engine or in the dream: one policy, one jitted update.

Dimension keys: T rollout steps, N environments, M minibatch, H, W, A actions.

Collecting experience differs: in the dream env (pure JAX) a whole rollout is one jitted `lax.scan` over
vmapped env steps (purejaxrl's shape); the engine env (GL rendering) is stepped from Python. Both give the
same `Trajectory`, and the same jitted `update` (GAE, then clipped PPO over epochs x minibatches, optax)
learns from it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, struct

from worldgen.errors import WorldgenError
from worldgen.frozen import from_dict
from worldgen.xla import jit


POLICY_KEYS = ("rgb", "goal")  # what the policy sees of an observation (both envs have these)


@dataclass(frozen=True)
class PPOConfig:
    """num_envs environments x rollout_steps per update; epochs x minibatches PPO passes over them."""

    resolution: int = 64
    num_actions: int = 7
    num_envs: int = 16
    rollout_steps: int = 32
    epochs: int = 4
    minibatches: int = 4
    gamma: float = 0.97
    gae_lambda: float = 0.95
    clip: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    lr: float = 3e-4
    max_grad_norm: float = 0.5

    def __post_init__(self):
        for name in ("resolution", "num_actions", "num_envs", "rollout_steps", "epochs", "minibatches"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise WorldgenError(f"PPOConfig.{name} = {v!r}: expected a positive integer")
        if self.resolution % 16:
            raise WorldgenError(f"PPOConfig.resolution = {self.resolution}: expected a multiple of 16")
        if (self.num_envs * self.rollout_steps) % self.minibatches:
            raise WorldgenError(f"PPOConfig: {self.num_envs} envs x {self.rollout_steps} steps do not split into "
                                f"{self.minibatches} minibatches")
        for name in ("gamma", "gae_lambda", "clip"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise WorldgenError(f"PPOConfig.{name} = {getattr(self, name)!r}: expected 0..1")
        if not 0.0 < self.lr < 1.0:
            raise WorldgenError(f"PPOConfig.lr = {self.lr!r}: expected 0..1")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "PPOConfig":
        return from_dict(cls, values, WorldgenError)


class Policy(nnx.Module):
    """Actor-critic on the observation dict: a small conv net on the frame and the goal seen from the eye."""

    def __init__(self, config: PPOConfig, *, rngs: nnx.Rngs):
        self.config = config
        self.conv1 = nnx.Conv(3, 16, (4, 4), strides=(4, 4), rngs=rngs)
        self.conv2 = nnx.Conv(16, 32, (4, 4), strides=(4, 4), rngs=rngs)
        self.vision = nnx.Linear(32 * (config.resolution // 16) ** 2, 64, rngs=rngs)
        self.goal = nnx.Linear(4, 64, rngs=rngs)
        self.hidden = nnx.Linear(128, 128, rngs=rngs)
        self.pi = nnx.Linear(128, config.num_actions, kernel_init=nnx.initializers.orthogonal(0.01), rngs=rngs)
        self.v = nnx.Linear(128, 1, kernel_init=nnx.initializers.orthogonal(1.0), rngs=rngs)

    def __call__(self, obs: dict):
        rgb = obs["rgb"].astype(jnp.float32) / 127.5 - 1.0
        lead = rgb.shape[:-3]
        x = nnx.relu(self.conv2(nnx.relu(self.conv1(rgb.reshape((-1,) + rgb.shape[-3:])))))
        x = nnx.relu(self.vision(x.reshape(x.shape[0], -1)))
        g = obs["goal"].reshape(-1, 2)
        dist = jnp.linalg.norm(g, axis=-1, keepdims=True)
        g = jnp.concatenate([g / (dist + 1e-6), jnp.log1p(dist), jnp.tanh(g[:, :1] / 5.0)], -1)
        h = nnx.relu(self.hidden(jnp.concatenate([x, nnx.relu(self.goal(g))], -1)))
        logits, value = self.pi(h), self.v(h)[:, 0]
        return logits.reshape(lead + logits.shape[-1:]), value.reshape(lead)


@struct.dataclass
class Trajectory:
    obs: dict  # each (T, N, ...)
    action: jax.Array  # (T, N)
    logp: jax.Array
    value: jax.Array
    reward: jax.Array
    done: jax.Array  # the step ended an episode (the next observation starts a new one)


def build(config: PPOConfig, seed: int = 0):
    """(policy, optimizer) for a config."""
    policy = Policy(config, rngs=nnx.Rngs(seed))
    tx = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(config.lr, eps=1e-5))
    return policy, nnx.Optimizer(policy, tx, wrt=nnx.Param)


def act(policy: Policy, obs: dict, key):
    """(action, log-probability, value) sampled from the policy."""
    logits, value = policy(obs)
    action = jax.random.categorical(key, logits)
    logp = jnp.take_along_axis(jax.nn.log_softmax(logits), action[..., None], -1)[..., 0]
    return action, logp, value


def gae(traj: Trajectory, last_value_N, gamma: float, lam: float):
    """(advantages, returns), each (T, N), cut at episode ends."""
    def body(carry, x):
        adv, next_value = carry
        reward, value, done = x
        keep = 1.0 - done.astype(jnp.float32)
        delta = reward + gamma * next_value * keep - value
        adv = delta + gamma * lam * keep * adv
        return (adv, value), adv

    _, adv = jax.lax.scan(body, (jnp.zeros_like(last_value_N), last_value_N),
                          (traj.reward, traj.value, traj.done), reverse=True)
    return adv, adv + traj.value


def ppo_loss(policy: Policy, batch: dict, config: PPOConfig):
    logits, value = policy(batch["obs"])
    logp_all = jax.nn.log_softmax(logits)
    logp = jnp.take_along_axis(logp_all, batch["action"][..., None], -1)[..., 0]
    ratio = jnp.exp(logp - batch["logp"])
    adv = (batch["adv"] - batch["adv"].mean()) / (batch["adv"].std() + 1e-8)
    pg = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - config.clip, 1 + config.clip) * adv).mean()
    vf = 0.5 * ((value - batch["ret"]) ** 2).mean()
    entropy = -(jnp.exp(logp_all) * logp_all).sum(-1).mean()
    loss = pg + config.vf_coef * vf - config.ent_coef * entropy
    return loss, {"policy_loss": pg, "value_loss": vf, "entropy": entropy}


def make_update(graphdef, config: PPOConfig):
    """A jitted (state, trajectory, last_value, key) -> (state, metrics); state = nnx.split((policy, opt))."""

    @jit
    def update(state, traj: Trajectory, last_value, key):
        policy, opt = nnx.merge(graphdef, state)
        adv, ret = gae(traj, last_value, config.gamma, config.gae_lambda)
        n = traj.action.size
        flat = lambda x: x.reshape((n,) + x.shape[2:])
        data = {"obs": jax.tree.map(flat, traj.obs), "action": flat(traj.action), "logp": flat(traj.logp),
                "adv": flat(adv), "ret": flat(ret)}
        grad_fn = nnx.value_and_grad(ppo_loss, has_aux=True)
        metrics = {}
        for epoch in range(config.epochs):
            order = jax.random.permutation(jax.random.fold_in(key, epoch), n).reshape(config.minibatches, -1)
            for mb in range(config.minibatches):
                batch = jax.tree.map(lambda x: x[order[mb]], data)
                (loss, metrics), grads = grad_fn(policy, batch, config)
                opt.update(policy, grads)
        metrics = dict(metrics, loss=loss)
        return nnx.state((policy, opt)), metrics

    return update


def make_dream_rollout(env, graphdef, config: PPOConfig):
    """A jitted (state, env_state, obs, key, env_params) -> (env_state, obs, trajectory, last_value) that
    steps config.num_envs dream envs config.rollout_steps times in one scan."""
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    @jit
    def rollout(state, env_state, obs, key, env_params):
        policy, _ = nnx.merge(graphdef, state)

        def body(carry, k):
            env_state, obs = carry
            k_act, k_env = jax.random.split(k)
            action, logp, value = act(policy, obs, k_act)
            obs2, env_state, reward, done, _ = step(jax.random.split(k_env, config.num_envs), env_state, action,
                                                     env_params)
            seen = {k: obs[k] for k in POLICY_KEYS}
            return (env_state, obs2), Trajectory(seen, action, logp, value, reward, done)

        (env_state, obs), traj = jax.lax.scan(body, (env_state, obs), jax.random.split(key, config.rollout_steps))
        _, last_value = policy(obs)
        return env_state, obs, traj, last_value

    return rollout


def engine_rollout(vec_env, policy_fn, obs: dict, key, config: PPOConfig):
    """Step a gymnasium vector env (same-step autoreset) config.rollout_steps times from Python;
    policy_fn(obs, key) -> (action, logp, value). Returns (obs, trajectory, last_value)."""
    keys = jax.random.split(key, config.rollout_steps)
    cols = {name: [] for name in ("obs", "action", "logp", "value", "reward", "done")}
    for k in keys:
        action, logp, value = policy_fn(obs, k)
        action = np.asarray(action)
        nxt, reward, terminated, truncated, _ = vec_env.step(action)
        for name, v in (("obs", obs), ("action", action), ("logp", logp), ("value", value), ("reward", reward),
                        ("done", terminated | truncated)):
            cols[name].append(v)
        obs = nxt
    _, _, last_value = policy_fn(obs, keys[0])
    stack = lambda xs: jnp.asarray(np.stack([np.asarray(x) for x in xs]))
    traj = Trajectory(obs={k: stack([o[k] for o in cols["obs"]]) for k in POLICY_KEYS},
                      action=stack(cols["action"]).astype(jnp.int32), logp=stack(cols["logp"]),
                      value=stack(cols["value"]), reward=stack(cols["reward"]).astype(jnp.float32),
                      done=stack(cols["done"]))
    return obs, traj, last_value

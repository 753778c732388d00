"""PPO: learns a trivial task in the engine in seconds, trains in the dream, resumes, evaluates, clear errors."""
import json

import numpy as np
import pytest

from training.agent import eval_agent, load_policy, train_agent
from training.ppo import PPOConfig
from worldgen.errors import WorldgenError
from worldgen.task import TaskConfig

TRIVIAL = TaskConfig(goal_steps=1, horizon=12)  # a goal about 3 m away


def _log(workdir):
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def test_ppo_learns_a_trivial_task_in_the_engine(tmp_path):
    cfg = PPOConfig(resolution=32, num_envs=8, rollout_steps=16, minibatches=2, epochs=4, lr=1e-3)
    train_agent("engine", tmp_path, cfg, 10, TRIVIAL, progress=False)
    reward = [r["mean_reward"] for r in _log(tmp_path)]
    assert len(reward) == 10
    assert np.mean(reward[-3:]) > np.mean(reward[:3]) + 0.3, reward  # random: ~0.2 per step; learned: ~1
    summary = eval_agent(str(tmp_path), tmp_path / "eval", episodes=4, task=TRIVIAL, videos=1, progress=False)
    assert (tmp_path / "eval" / "agent.mp4").stat().st_size > 0
    assert summary["episodes"] == 4 and 0.0 <= summary["success_rate"] <= 1.0


def test_dream_training_runs_and_resumes(tmp_path, tiny_model_dir, tiny_dataset):
    cfg = PPOConfig(resolution=32, num_envs=2, rollout_steps=4, minibatches=2, epochs=1)
    task = TaskConfig(goal_steps=4, horizon=6)
    kw = dict(model=str(tiny_model_dir), data=tiny_dataset, progress=False, checkpoint_every=1)
    train_agent("dream", tmp_path, cfg, 2, task, **kw)
    first = load_policy(tmp_path)
    with pytest.raises(WorldgenError, match="already has checkpoints"):
        train_agent("dream", tmp_path, cfg, 3, task, **kw)
    with pytest.raises(WorldgenError, match="trained in the dream env, not engine"):
        train_agent("engine", tmp_path, cfg, 3, task, resume=True, progress=False)
    last = train_agent("dream", tmp_path, cfg, 3, task, resume=True, **kw)
    assert last["update"] == 3 and [r["update"] for r in _log(tmp_path)] == [1, 2, 3]
    assert np.isfinite([r["loss"] for r in _log(tmp_path)]).all()
    assert not np.allclose(np.asarray(load_policy(tmp_path).pi.kernel[...]), np.asarray(first.pi.kernel[...]))
    other = PPOConfig(resolution=32, num_envs=4, rollout_steps=4, minibatches=2, epochs=1)
    with pytest.raises(WorldgenError, match="num_envs"):
        train_agent("dream", tmp_path, other, 4, task, resume=True, **kw)


def test_random_policy_evaluates(tmp_path):
    s = eval_agent("random", tmp_path, episodes=2, task=TaskConfig(goal_steps=1, horizon=4), videos=0, progress=False)
    saved = json.loads((tmp_path / "agent_eval.json").read_text())
    assert saved["episodes"] == 2 and len(saved["per_episode"]) == 2 and s["mean_steps"] <= 4


def test_bad_input_is_a_clear_error(tmp_path, tiny_model_dir, tiny_dataset):
    with pytest.raises(WorldgenError, match="holds a world model, not a PPO policy"):
        load_policy(tiny_model_dir)
    with pytest.raises(WorldgenError, match="is not a worldgen model folder"):
        load_policy(tmp_path)
    with pytest.raises(WorldgenError, match="pass --data"):
        train_agent("dream", tmp_path / "a", PPOConfig(resolution=32), 1, model=str(tiny_model_dir), progress=False)
    with pytest.raises(WorldgenError, match="policy at 64"):
        train_agent("dream", tmp_path / "b", PPOConfig(), 1, model=str(tiny_model_dir), data=tiny_dataset,
                    progress=False)
    with pytest.raises(WorldgenError, match="minibatches"):
        PPOConfig(num_envs=3, rollout_steps=3, minibatches=2)
    with pytest.raises(WorldgenError, match="episodes = 0"):
        eval_agent("random", tmp_path / "c", episodes=0)

"""The camera head and its move rules: a turn's fixed angle, the player's move outcomes, and the pose stage
that learns them."""
import jax
import jax.numpy as jnp
import numpy as np

from worldgen import World
from worldgen.actions import Action
from worldgen.dataset import EpisodeDataset
from worldgen.model import motion
from worldgen.model.geometry import apply_delta, depth_to_disparity, pose_delta
from worldgen.player import camera_pose, spawn, step


def test_pose_delta_matches_player_motion_and_inverts():
    world = World(2)
    s0 = spawn(world, np.random.default_rng(1))
    s1, blocked = step(world, s0, Action.FORWARD)
    s2, _ = step(world, s1, Action.TURN_LEFT)
    p0, p1, p2 = (jnp.asarray(camera_pose(world, s)) for s in (s0, s1, s2))
    d01, d12 = np.asarray(pose_delta(p0, p1)), np.asarray(pose_delta(p1, p2))
    assert blocked or abs(d01[0] - 0.5) < 1e-4 and abs(d01[1]) < 1e-4
    assert abs(d12[3] - np.radians(15)) < 1e-4 and np.allclose(d12[:3], 0, atol=1e-5)
    assert np.allclose(np.asarray(apply_delta(p0, pose_delta(p0, p2))), np.asarray(p2), atol=1e-4)


def test_a_turn_turns_by_the_same_angle_whatever_the_scene(random_tiny_model):
    """Yaw is a function of the action alone (a turn is never blocked), while the move sees the scene."""
    m = random_tiny_model
    res = m.config.resolution
    disp = jax.random.uniform(jax.random.key(0), (2, res, res))
    poses = jnp.stack([jnp.eye(4), jnp.asarray(camera_pose(World(0), spawn(World(0), np.random.default_rng(1))))])
    for action in range(m.config.num_actions):
        d = np.asarray(m.pose_delta(disp, jnp.full((2,), action), poses))
        assert d[0, 3] == d[1, 3]
    d = np.asarray(m.pose_delta(disp, jnp.full((2,), int(Action.FORWARD)), poses))
    assert not np.allclose(d[0, :3], d[1, :3])


def test_every_recorded_move_is_one_of_the_four_move_outcomes(rollout_dataset):
    """The structure `move_outcomes` assumes: under the player's collision rule each recorded move is the
    whole step, its world-x part, its world-z part, or nothing."""
    data = EpisodeDataset(rollout_dataset, "train")
    full = {int(Action.FORWARD): (0.5, 0.0), int(Action.BACK): (-0.5, 0.0),
            int(Action.STRAFE_LEFT): (0.0, -0.5), int(Action.STRAFE_RIGHT): (0.0, 0.5)}
    checked = 0
    for e in range(len(data)):
        ep = data.episode(e)
        for t in range(1, len(ep["actions"])):
            a = int(ep["actions"][t])
            if a not in full:
                continue
            p0, p1 = jnp.asarray(ep["poses"][t - 1])[None], jnp.asarray(ep["poses"][t])[None]
            outcomes = np.asarray(motion.move_outcomes(jnp.asarray([full[a]]), p0))[0]
            true = np.asarray(pose_delta(p0[0], p1[0]))[:2]
            assert np.abs(outcomes - true).max(-1).min() < 1e-4, (e, t, true, outcomes)
            checked += 1
    assert checked > 20


def test_the_move_outcome_head_learns_the_exact_step_in_the_pose_stage(rollout_dataset, tiny_model_dir, tmp_path):
    from worldgen.cli import main
    out = tmp_path / "pose" / "model"
    assert main(["train", "--data", str(rollout_dataset), "--workdir", str(tmp_path / "pose"), "--stage", "pose",
                 "--init", str(tiny_model_dir), "--move-outcomes", "--steps", "400", "--batch-size", "64",
                 "--lr", "3e-3", "--warmup", "10", "--weight-decay", "0", "--eval-episodes", "0",
                 "--out", str(out)]) == 0
    from worldgen.model.store import load_model
    model = load_model(out)
    assert model.config.move_outcomes
    stride = np.asarray(model.stride[...])
    np.testing.assert_allclose(stride[int(Action.FORWARD)], [0.5, 0.0], atol=0.01)
    np.testing.assert_allclose(stride[int(Action.BACK)], [-0.5, 0.0], atol=0.01)
    np.testing.assert_allclose(stride[int(Action.TURN_LEFT)], [0.0, 0.0], atol=0.01)
    # On recorded steps, the head's moves (what a dream uses) are the true ones, to the centimetre, for most.
    data = EpisodeDataset(rollout_dataset, "train")
    ep = data.episode(0)
    poses, actions = jnp.asarray(ep["poses"]), jnp.asarray(ep["actions"])
    disp = depth_to_disparity(jnp.asarray(ep["depth"], jnp.float32))
    pred = np.asarray(model.pose_delta(disp[:-1], actions[1:], poses[:-1]))
    true = np.asarray(jax.vmap(pose_delta)(poses[:-1], poses[1:]))
    assert (np.abs(pred[:, :2] - true[:, :2]).max(-1) < 0.01).mean() > 0.8
    # A sure head takes its outcome exactly; an unsure one keeps the regressed move.
    move, outcomes = jnp.asarray([[0.3, 0.1, 0.02, 0.0]] * 2), jnp.asarray([[[0.5, 0.0], [0.2, 0.1], [0.3, -0.1],
                                                                               [0.0, 0.0]]] * 2)
    logits = jnp.asarray([[9.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.9]])
    chosen = np.asarray(motion.chosen_motion(move, outcomes, logits))
    np.testing.assert_allclose(chosen, [[0.5, 0.0, 0.02, 0.0], [0.3, 0.1, 0.02, 0.0]])

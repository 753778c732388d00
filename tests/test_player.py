import math

import numpy as np
import pytest

from worldgen import Action, World, WorldSpec, WorldgenError
from worldgen.actions import ACTION_NAMES, NUM_ACTIONS, parse_action
from worldgen.player import EYE_HEIGHT, PLAYER_RADIUS, PlayerState, camera_pose, collides, spawn, step


def test_action_set():
    assert NUM_ACTIONS >= 7 and ACTION_NAMES[0] == "noop"
    assert parse_action("strafe-left") == Action.STRAFE_LEFT and parse_action("3") == Action.TURN_LEFT
    with pytest.raises(WorldgenError, match="unknown action 'jump'"):
        parse_action("jump")
    with pytest.raises(WorldgenError, match="unknown action index 9"):
        parse_action(9)


def test_step_is_deterministic_and_turns_and_moves():
    world = World(5)
    s = spawn(world, np.random.default_rng(1))
    s1, _ = step(world, s, Action.TURN_LEFT)
    assert math.isclose((s1.yaw - s.yaw) % (2 * math.pi), math.radians(15))
    walk = [Action.FORWARD, Action.STRAFE_RIGHT, Action.BACK, Action.TURN_RIGHT] * 10
    a = b = s
    for act in walk:
        a, _ = step(world, a, act)
        b, _ = step(world, b, act)
    assert a == b and (a.x, a.z) != (s.x, s.z)


def test_eye_height_follows_terrain():
    world = World(5, WorldSpec(terrain_height=20))
    for x, z in [(0, 0), (13.3, -7.1), (50, 50)]:
        pose = camera_pose(world, PlayerState(x, z, 0.0))
        assert math.isclose(pose[1, 3], float(world.height(x, z)) + EYE_HEIGHT, rel_tol=1e-5)


def test_cannot_walk_through_a_building():
    world = World(2, WorldSpec(object_density=4))
    building = next(o for key in world.chunks_within(0, 0, 80) for o in world.layout(*key)
                    if o.kind == "building")
    # Stand west of the building, facing east (yaw = -90 degrees faces +x), and push forward.
    s = PlayerState(building.x - building.hx - 3.0, building.z, -math.pi / 2)
    assert not collides(world, s.x, s.z)
    blocked_any = False
    for _ in range(40):
        s, blocked = step(world, s, Action.FORWARD)
        blocked_any |= blocked
        assert s.x < building.x - building.hx - PLAYER_RADIUS + 1e-9
    assert blocked_any


def test_random_walk_never_enters_obstacles_or_leaves_bounds():
    world = World(9, WorldSpec(world_size=32, object_density=8, chunk_size=16))
    rng = np.random.default_rng(0)
    s = spawn(world, rng)
    for a in rng.integers(0, NUM_ACTIONS, size=600):
        s, _ = step(world, s, int(a))
        assert not collides(world, s.x, s.z)
        assert abs(s.x) <= 16 - PLAYER_RADIUS and abs(s.z) <= 16 - PLAYER_RADIUS


def test_explorer_pushes_on_after_a_blocked_move_about_half_the_time_then_turns_away():
    from worldgen.policy import Explorer
    pushed = 0
    for seed in range(200):
        ex = Explorer(np.random.default_rng(seed))
        ex.plan.clear()
        ex.plan.append(Action.FORWARD)
        assert ex.act(False) == Action.FORWARD
        after = [ex.act(True)] + [ex.act(False) for _ in range(20)]  # blocked once, then free
        pushes = next(i for i, a in enumerate(after) if a != Action.FORWARD)
        assert pushes <= 8 and after[pushes] in (Action.TURN_LEFT, Action.TURN_RIGHT)
        pushed += pushes > 0
    assert 60 < pushed < 140

"""A curious explorer: walks, turns, looks around, retraces its steps and gets itself unstuck.

It chooses a mode, runs it for a few steps, then chooses again:
  walk      forward with an occasional small turn;
  turn      several turns one way (a new heading);
  look      a full look around in place (24 turns = 360 degrees);
  strafe    a few sideways steps;
  backtrack the inverse of its last moves in reverse order, which brings it back to a place it has seen;
  pause     a short noop.
A blocked move is pushed on for 2-8 more steps half of the time (sliding along the obstacle, as a player
holding a key does), then it turns away by 60-150 degrees. Everything is drawn from the Generator it is given.
"""
from __future__ import annotations

from collections import Counter, deque

import numpy as np

from worldgen.actions import ACTION_NAMES, INVERSE, Action
from worldgen.player import spawn, step
from worldgen.world import World

MODES = ("walk", "turn", "look", "strafe", "backtrack", "pause")
MODE_WEIGHTS = np.array([0.50, 0.18, 0.05, 0.10, 0.12, 0.05])
PUSH_P = 0.5  # chance that a blocked move is pushed on before turning away


class Explorer:
    def __init__(self, rng: np.random.Generator, memory: int = 48):
        self.rng = rng
        self.plan: deque[Action] = deque()
        self.history: deque[Action] = deque(maxlen=memory)
        self.pushes = 0  # blocked moves still to push on before turning away

    def _new_plan(self) -> None:
        rng = self.rng
        mode = MODES[int(rng.choice(len(MODES), p=MODE_WEIGHTS))]
        side = Action.TURN_LEFT if rng.random() < 0.5 else Action.TURN_RIGHT
        if mode == "walk":
            for _ in range(int(rng.integers(4, 20))):
                self.plan.append(side if rng.random() < 0.12 else Action.FORWARD)
        elif mode == "turn":
            self.plan.extend([side] * int(rng.integers(2, 8)))
        elif mode == "look":
            self.plan.extend([side] * 24)
        elif mode == "strafe":
            sideways = Action.STRAFE_LEFT if rng.random() < 0.5 else Action.STRAFE_RIGHT
            self.plan.extend([sideways] * int(rng.integers(2, 7)))
            if rng.random() < 0.3:
                self.plan.extend([Action.BACK] * int(rng.integers(1, 4)))
        elif mode == "backtrack" and len(self.history) >= 6:
            n = int(rng.integers(6, len(self.history) + 1))
            self.plan.extend(INVERSE[a] for a in reversed(list(self.history)[-n:]))
        else:
            self.plan.extend([Action.NOOP] * int(rng.integers(1, 4)))

    def act(self, blocked: bool) -> Action:
        """Next action, given whether the previous move was blocked."""
        if blocked and not self.pushes:
            rng = self.rng
            side = Action.TURN_LEFT if rng.random() < 0.5 else Action.TURN_RIGHT
            self.pushes = int(rng.integers(2, 9)) if rng.random() < PUSH_P else 0
            self.plan = deque([self.history[-1]] * self.pushes + [side] * int(rng.integers(4, 11))
                              + [Action.FORWARD] * 3)
        if not self.plan:
            self._new_plan()
        self.pushes = max(self.pushes - 1, 0)
        action = self.plan.popleft()
        self.history.append(action)
        return action


def explore(world: World, rng: np.random.Generator, steps: int):
    """The curious explorer's walk from a spawn drawn from `rng`, physics only (no frames): (player state, action,
    blocked) for each of `steps` steps; the first action is NOOP. `worldgen.env.WorldEnv` walks it with frames."""
    explorer = Explorer(rng)
    state, blocked = spawn(world, rng), False
    for t in range(steps):
        action = Action.NOOP
        if t > 0:
            action = explorer.act(blocked)
            state, blocked = step(world, state, action)
        yield state, action, blocked


def action_statistics(actions: np.ndarray, blocked: int, moves: int) -> str:
    """A small table of action frequencies plus the share of blocked moves."""
    counts = Counter(int(a) for a in np.asarray(actions).ravel())
    total = max(sum(counts.values()), 1)
    lines = [f"{'action':<14}{'count':>9}{'share':>9}"]
    for i, name in enumerate(ACTION_NAMES):
        lines.append(f"{name:<14}{counts.get(i, 0):>9}{counts.get(i, 0) / total:>9.1%}")
    lines.append(f"blocked moves: {blocked} of {moves} ({blocked / max(moves, 1):.1%})")
    return "\n".join(lines)

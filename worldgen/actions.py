"""The action set: the single source of truth that the player, recorder, model and viewer import.

Action `a` at step t is the action that produced frame t from frame t-1; the first action of an
episode is always NOOP.
"""
from __future__ import annotations

import enum

from worldgen.errors import WorldgenError


class Action(enum.IntEnum):
    NOOP = 0
    FORWARD = 1
    BACK = 2
    TURN_LEFT = 3
    TURN_RIGHT = 4
    STRAFE_LEFT = 5
    STRAFE_RIGHT = 6


NUM_ACTIONS = len(Action)
MAX_ACTIONS = 256  # the most actions an imported game (a dataset, a model) may have
ACTION_NAMES: tuple[str, ...] = tuple(a.name.lower() for a in Action)

# The action that undoes each action (used by the explorer to retrace its steps).
INVERSE = {
    Action.NOOP: Action.NOOP,
    Action.FORWARD: Action.BACK,
    Action.BACK: Action.FORWARD,
    Action.TURN_LEFT: Action.TURN_RIGHT,
    Action.TURN_RIGHT: Action.TURN_LEFT,
    Action.STRAFE_LEFT: Action.STRAFE_RIGHT,
    Action.STRAFE_RIGHT: Action.STRAFE_LEFT,
}


def parse_action(value: str | int) -> Action:
    """Turn a name ('forward', 'FORWARD') or an index into an Action, with a clear error otherwise."""
    if isinstance(value, int) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
        index = int(value)
        if 0 <= index < NUM_ACTIONS:
            return Action(index)
        raise WorldgenError(f"unknown action index {index}: expected 0..{NUM_ACTIONS - 1}")
    name = str(value).strip().upper().replace("-", "_").replace(" ", "_")
    if name in Action.__members__:
        return Action[name]
    raise WorldgenError(f"unknown action {value!r}: expected one of {', '.join(ACTION_NAMES)}")

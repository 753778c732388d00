"""The camera's move rules: which of a step's possible outcomes the camera takes (the camera head's regressed
move, its move-outcome classifier's likeliest outcome, or the first outcome the real start frames leave free).

Dimension keys: B batch, O move outcomes.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from worldgen.model import memory as mem
from worldgen.model.geometry import heading_frame
from worldgen.player import PLAYER_RADIUS

MOVE_OUTCOMES = 4  # a step moves fully, slides along world x, slides along world z, or is blocked
CONFIDENT = 0.75  # with move_outcomes, the probability above which the head takes its outcome as the move
STILL = 0.01  # metres: a horizontal move shorter than this is the camera head taking a step as blocked


def chosen_motion(motion_B4, outcomes_BO2=None, logits_BO=None):
    """The camera head's motion: the regressed one, or with move outcomes the most likely outcome where the
    head gives it at least CONFIDENT probability."""
    if outcomes_BO2 is None:
        return motion_B4
    p = jax.nn.softmax(logits_BO, -1)
    chosen = jnp.take_along_axis(outcomes_BO2, jnp.argmax(p, -1)[:, None, None], 1)[:, 0]
    return motion_B4.at[:, :2].set(jnp.where(p.max(-1, keepdims=True) >= CONFIDENT, chosen, motion_B4[:, :2]))


def collide(memory: mem.Memory, pose_B44, motion_B4, outcomes_BO2, moves_B):
    """The motion with its horizontal move replaced, where it is a move (`moves_B`) that takes the eye to a
    position the real start frames show something standing in (`memory.solid`, the player's disc), by the first
    of the outcomes (the whole step, its slide along world x, along world z, none) that does not. The player
    is blocked so (`worldgen.player.step`); the camera head alone caught 9 of 137 blocked moves on 24 long
    walks (docs/model.md, session 22). A move the camera head takes as blocked (shorter than STILL) where the
    real start frames show the whole step blocked slides as the player does, along the axis they leave free:
    the head's stop alone, facing the same wall with the same frame, stopped a held walk for good where the
    player slid on (session 47). Where they show the whole step free, the head's stop stands (it may see a
    dreamed wall). Each position is judged with the eye at the lower of its heights before and after the step: a
    crown or eave just over the eye's CROWN_CLEARANCE is not a wall because the head's step goes up a few
    centimetres (with the eye 8.5 cm higher, the spot the camera stood on was solid too, and every move blocked)."""
    fwd, right = jax.vmap(heading_frame)(pose_B44)
    rise = jnp.minimum(motion_B4[:, None, 2:3], 0.0)  # judged at the lower of the eye's heights before and after
    eye = lambda move_BO2: (pose_B44[:, None, :3, 3] + move_BO2[..., :1] * fwd[:, None]
                            + move_BO2[..., 1:2] * right[:, None] + rise * jnp.eye(3)[1])
    in_the_way = mem.solid(memory, eye(jnp.concatenate([motion_B4[:, None, :2], outcomes_BO2], 1)), PLAYER_RADIUS)
    free = ~in_the_way[:, 1:].at[:, -1].set(False)  # the last outcome, no move, is always free
    first = jnp.take_along_axis(outcomes_BO2, jnp.argmax(free, 1)[:, None, None], 1)[:, 0]
    still = jnp.linalg.norm(motion_B4[:, :2], axis=-1) < STILL
    blocked = moves_B & (in_the_way[:, 0] | (still & in_the_way[:, 1]))
    return motion_B4.at[:, :2].set(jnp.where(blocked[:, None], first, motion_B4[:, :2]))


def move_outcomes(stride_B2, pose_B44):
    """The MOVE_OUTCOMES horizontal moves (forward m, right m in the heading frame) a step can have under the
    player's collision rule (`worldgen.player.step`): all of it, only its world-x part, only its world-z part
    (sliding along an obstacle), or none. (B, MOVE_OUTCOMES, 2)."""
    fwd, right = jax.vmap(heading_frame)(pose_B44)
    world = stride_B2[:, :1] * fwd + stride_B2[:, 1:] * right  # (B,3), y = 0
    keep = jnp.array([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    moved = world[:, None, :] * keep[None]  # (B,O,3)
    return jnp.stack([jnp.einsum("boc,bc->bo", moved, fwd), jnp.einsum("boc,bc->bo", moved, right)], -1)

"""Filling the memory drawing's holes (`worldgen.model.fill`): what the network starts from where memory knows
nothing."""
import jax.numpy as jnp
import numpy as np
import pytest

from worldgen import World
from worldgen.actions import Action
from worldgen.errors import WorldgenError
from worldgen.model.config import preset
from worldgen.model.fill import fill_holes
from worldgen.player import camera_pose, spawn, step
from worldgen.render import Renderer

RES = 48


@pytest.fixture(scope="module")
def frame():
    """A rendered frame: sky above, ground below, objects between."""
    world = World(4)
    s, _ = step(world, spawn(world, np.random.default_rng(0)), Action.NOOP)
    with Renderer(RES) as r:
        return r.render(world, camera_pose(world, s))


def test_fill_holes_keeps_what_is_known_and_fills_holes_and_strips_from_beside_them(frame):
    """Known pixels stay exactly; a pinhole takes its neighbours' colour; a strip a turn uncovers continues
    the rows beside it (sky beside sky, ground beside ground); an image with nothing known says so."""
    rgb = jnp.asarray(frame.rgb_HWC)[None].astype(jnp.float32) / 127.5 - 1
    known = np.ones((1, RES, RES), bool)
    known[0, :, :10] = False  # a strip at the left edge
    known[0, 30, 30] = False  # a pinhole
    filled, any_known = fill_holes(rgb, jnp.asarray(known))
    filled, truth = np.asarray(filled), np.asarray(rgb)
    assert bool(any_known[0]) and np.array_equal(filled[known], truth[known])
    hole_err = np.abs(filled[0, 30, 30] - truth[0, 30, 30]).max()
    assert hole_err < np.abs(truth[0, 29:32, 29:32] - truth[0, 30, 30]).max() + 0.05
    # Each filled row of the strip is nearer its own row at the strip's edge than the image's mean colour is.
    edge = truth[0, :, 10]
    err_fill = np.abs(filled[0, :, 5] - edge).mean()
    err_mean = np.abs(truth[0].mean((0, 1)) - edge).mean()
    assert err_fill < 0.5 * err_mean
    _, nothing = fill_holes(rgb, jnp.zeros((1, RES, RES), bool))
    assert not bool(nothing[0])


def test_fill_behind_fills_a_hole_between_two_surfaces_from_the_farther_and_nothing_else_changes():
    """fill_holes(..., behind=True): a hole with known pixels left and right in its row takes the value
    (colour and disparity) of the farther of its two nearest known pixels, whichever side that is; known pixels
    stay, and strips at the frame's edges are filled as without it. ModelConfig.fill_behind needs fill."""
    near, far = [0.8, 0.6, 0.4, 0.5], [-0.6, -0.2, 0.9, 0.001]  # RGB and disparity: a near wall, the sky
    values = np.zeros((1, 3, 10, 4), np.float32)
    known = np.zeros((1, 3, 10), bool)
    for row, (left, right) in enumerate([(near, far), (far, near)]):  # the near side left, then right
        values[0, row, 1], values[0, row, 7] = left, right
        known[0, row, [1, 7]] = True
    values[0, 2, 6], known[0, 2, 6] = near, True  # row 2: known only at one place (an edge strip each side)
    plain, _ = fill_holes(jnp.asarray(values), jnp.asarray(known))
    behind, any_known = fill_holes(jnp.asarray(values), jnp.asarray(known), behind=True)
    plain, behind = np.asarray(plain), np.asarray(behind)
    assert bool(any_known[0])
    np.testing.assert_allclose(behind[0, 0, 2:7], np.broadcast_to(far, (5, 4)), atol=1e-6)
    np.testing.assert_allclose(behind[0, 1, 2:7], np.broadcast_to(far, (5, 4)), atol=1e-6)
    assert np.abs(plain[0, 0, 2:7] - far).max() > 0.5  # without it the hole blends the two surfaces
    np.testing.assert_array_equal(behind[known], values[known])
    edges = np.ones((1, 3, 10), bool)
    edges[0, :2, 2:7] = False  # everything but the two holes between surfaces
    np.testing.assert_allclose(behind[edges], plain[edges], atol=1e-6)
    with pytest.raises(WorldgenError, match="fill_behind needs fill"):
        preset("small", fill_behind=True)


def test_fill_edge_continues_the_rows_background_past_an_object_at_a_strips_edge():
    """fill_holes(..., edge=True): a strip at the frame's edge (known pixels on one side only) takes its row's
    nearest background pixel (no nearer than EDGE_BACKGROUND times the row's median known disparity), not the near
    object standing at the strip's edge; a row that is all one surface fills as without it; known pixels and holes
    between two known pixels stay as without it; where the pixel at the strip's edge is real, the strip fills as
    without it. ModelConfig.fill_edge needs fill."""
    sky, trunk, ground = [0.2, 0.4, 0.9, 0.0], [0.3, 0.1, 0.0, 0.5], [0.5, 0.3, 0.1, 0.1]  # RGB and disparity
    values = np.zeros((1, 3, 12, 4), np.float32)
    known = np.zeros((1, 3, 12), bool)
    values[0, 0, 4:], values[0, 0, 4:6] = sky, trunk  # row 0: a trunk at the left edge of a strip, then sky
    values[0, 1, :8], values[0, 1, 4:8] = ground, trunk  # row 1: ground, a trunk at the right edge of a strip
    values[0, 2, 3:9] = ground  # row 2: ground alone, strips at both edges
    known[0, 0, 4:], known[0, 1, :8], known[0, 2, 3:9] = True, True, True
    plain, _ = fill_holes(jnp.asarray(values), jnp.asarray(known), behind=True)
    edge, any_known = fill_holes(jnp.asarray(values), jnp.asarray(known), behind=True, edge=True)
    plain, edge = np.asarray(plain), np.asarray(edge)
    assert bool(any_known[0])
    np.testing.assert_allclose(edge[0, 0, :4], np.broadcast_to(sky, (4, 4)), atol=1e-6)
    np.testing.assert_allclose(edge[0, 1, 8:], np.broadcast_to(ground, (4, 4)), atol=1e-6)
    assert np.abs(plain[0, 0, :4] - sky).max() > 0.2 and np.abs(plain[0, 1, 8:] - ground).max() > 0.2
    np.testing.assert_allclose(edge[0, 2], plain[0, 2], atol=1e-6)
    np.testing.assert_array_equal(edge[known], values[known])
    real = np.zeros_like(known)
    real[0, 0, 4] = True  # row 0's trunk, at the strip's edge, is real
    kept, _ = fill_holes(jnp.asarray(values), jnp.asarray(known), behind=True, edge=True, real_BHW=jnp.asarray(real))
    kept = np.asarray(kept)
    np.testing.assert_allclose(kept[0, 0], plain[0, 0], atol=1e-6)
    np.testing.assert_allclose(kept[0, 1:], edge[0, 1:], atol=1e-6)
    with pytest.raises(WorldgenError, match="fill_edge needs fill"):
        preset("small", fill_edge=True)

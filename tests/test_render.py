import numpy as np
import pytest

from worldgen import World, WorldgenError
from worldgen.player import camera_pose, spawn
from worldgen.render import Renderer


@pytest.fixture(scope="module")
def world():
    return World(4)


@pytest.mark.parametrize("res", [32, 512])
def test_outputs_at_any_resolution(world, res):
    with Renderer(res) as r:
        f = r.render(world, camera_pose(world, spawn(world, np.random.default_rng(0))))
    assert f.rgb_HWC.shape == (res, res, 3) and f.rgb_HWC.dtype == np.uint8
    assert f.depth_HW.shape == (res, res) and f.depth_HW.dtype == np.float32
    assert f.intrinsics.shape == (3, 3) and f.pose.shape == (4, 4)
    assert f.rgb_HWC.std() > 5 and (f.depth_HW > 0).mean() > 0.3


def test_bad_resolution_and_pose():
    with pytest.raises(WorldgenError, match="resolution must be an integer from 32 to 512"):
        Renderer(16)
    with Renderer(32) as r, pytest.raises(WorldgenError, match="4x4"):
        r.render(World(0), np.eye(3))


def test_depth_is_metric(world):
    """Unproject ground pixels with depth + intrinsics + pose: they must land on the terrain."""
    with Renderer(64) as r:
        f = r.render(world, camera_pose(world, spawn(world, np.random.default_rng(3))))
    K, pose = f.intrinsics, f.pose
    v, u = np.mgrid[0:64, 0:64]
    d = f.depth_HW
    cam = np.stack([(u + 0.5 - K[0, 2]) * d / K[0, 0], -(v + 0.5 - K[1, 2]) * d / K[1, 1], -d], -1)
    pts = cam[d > 0] @ pose[:3, :3].T + pose[:3, 3]
    gap = pts[:, 1] - world.height(pts[:, 0], pts[:, 2])
    # Most visible pixels are ground; ground points sit on the height field to within a few cm.
    assert np.mean(np.abs(gap) < 0.1) > 0.5
    assert np.all(gap > -0.3)  # nothing is seen below the ground


@pytest.mark.parametrize("res", [32, 64])
def test_depth_is_taken_at_each_pixels_centre(world, res):
    """A pixel's depth is its centre's, as the pixel convention says (`worldgen.camera`), at every distance: pyrender
    reads depth from one of its 4 multisamples, off the centre, and the ground unprojected from it lay higher the
    farther it was seen (0.24 m at 10-20 m, 32x32)."""
    with Renderer(res) as r:
        f = r.render(world, camera_pose(world, spawn(world, np.random.default_rng(0))))
    K, pose, d = f.intrinsics, f.pose, f.depth_HW
    v, u = np.mgrid[0:res, 0:res]
    cam = np.stack([(u + 0.5 - K[0, 2]) * d / K[0, 0], -(v + 0.5 - K[1, 2]) * d / K[1, 1], -d], -1)
    pts = cam[d > 0] @ pose[:3, :3].T + pose[:3, 3]
    gap = pts[:, 1] - world.height(pts[:, 0], pts[:, 2])
    far = np.hypot(pts[:, 0] - pose[0, 3], pts[:, 2] - pose[2, 3])
    ground = np.abs(gap) < 0.6
    for lo, hi in ((0, 3), (3, 6), (6, 10), (10, 20)):
        band = ground & (far >= lo) & (far < hi)
        assert band.sum() > 20 and abs(np.median(gap[band])) < 0.01, (lo, hi, np.median(gap[band]))


def test_many_poses_one_world_and_two_worlds(world):
    s = spawn(world, np.random.default_rng(0))
    with Renderer(32) as r:
        a = r.render(world, camera_pose(world, s)).rgb_HWC
        b = r.render(world, camera_pose(world, s.__class__(s.x, s.z, s.yaw + 1.0))).rgb_HWC
        other = World(5)
        c = r.render(other, camera_pose(other, spawn(other, np.random.default_rng(0)))).rgb_HWC
        again = r.render(world, camera_pose(world, s)).rgb_HWC
    assert not np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(a, again)


def test_a_night_world_is_the_same_world_darker(world):
    """`WorldSpec.brightness` scales the light on every face; "night" in a description sets it and a dark sky."""
    import dataclasses

    from worldgen.describe import describe
    night_spec = describe("a world at night", world.spec).spec
    assert night_spec.brightness == 0.4 and max(night_spec.sky()) < 0.25
    night = World(world.seed, dataclasses.replace(world.spec, brightness=night_spec.brightness))
    pose = camera_pose(world, spawn(world, np.random.default_rng(3)))
    with Renderer(64) as r:
        day, dark = r.render(world, pose), r.render(night, pose)
    assert np.array_equal(day.depth_HW, dark.depth_HW)  # the same world, only the light differs
    solid = day.depth_HW > 0
    ratio = dark.rgb_HWC[solid].astype(float).sum() / day.rgb_HWC[solid].astype(float).sum()
    assert ratio == pytest.approx(0.4, abs=0.02)
    sky = (day.rgb_HWC == np.round(np.array(world.sky_color()) * 255)).all(-1)
    assert sky.mean() > 0.2 and np.array_equal(dark.rgb_HWC[sky], day.rgb_HWC[sky])  # the spec's sky, not dimmed

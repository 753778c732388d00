"""The persistent world memory: coloured surfels with a footprint, written once, rendered with holes filled.

Dimension keys: B batch, N points, P pinned points, V pinned views, S trail positions, H height, W width,
C colour channels, L pyramid levels.

The memory is the authority on what has been seen. It holds two regions of fixed size:
- pinned: the real frames a dream starts from, every pixel (sky too, as points at SKY_DEPTH); never overwritten;
- ring: dreamed content. Only pixels the memory does not already know at full resolution are written, packed
  one after another into a ring buffer (the oldest are overwritten once it is full), so a surface is written
  once and not re-encoded every step. Capacity and cost per step are fixed.

Each point keeps a world-space footprint radius: half a pixel at the depth it was seen from. Rendering
(`render`, `pyramid`) puts a point on the level of a pixel pyramid (`ModelConfig.pyramid_levels`) where its projected
footprint is about one cell, so near surfaces seen from afar are drawn as blocks rather than a sieve of holes;
the levels meet in one z-test, and single-pixel holes between known neighbours are filled. A pixel counts
as known at full resolution (`fine`) when a level-0 point, or a fill between level-0 points, drew it; a
pixel drawn only from magnified blocks is shown but rewritten (refined) by the next frame.

The memory also keeps the camera pose of each pinned frame (`views`) and a ring of the positions the camera
has stood at (`trail`): a camera back within SAME_PLACE of a pinned view's position and SAME_HEADING of its
heading sees that real frame as it was (`render`), and one back where it stood before stands at the height
it had there (`settle`), as the player's eye follows the ground.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from worldgen.model import pyramid, surface
from worldgen.model.fill import fill_holes
from worldgen.model.geometry import MIN_DEPTH, SKY_DEPTH, unproject
from worldgen.model.pyramid import DEPTH_TOLERANCE
from worldgen.player import EYE_HEIGHT

FOOTPRINT = 0.5  # a point's radius, in pixels of the frame it was seen in
FLYING_EDGE = 0.25  # see flying_pixels
SAME_PLACE = 0.05  # metres: a camera this near a pinned view's position (and its heading) sees that view as it was
SAME_HEADING = 3.0  # degrees
TRAIL = 256  # camera positions remembered
_NOWHERE = 1e9  # the position of an empty view or trail slot
PALETTE_STRIDE = 4  # every 4th column of the pinned real frames is a palette candidate
PALETTE_SIZE = 64  # colours kept per row: the most frequent candidates (a row window holds about 60 on average)
NEAR_GROUND = 1.0  # metres below the eye: dreamed points lower than this are ground, which `write` always keeps
SOLID_ABOVE = 0.15  # metres: a real point this far above the ground (and under CROWN_CLEARANCE) stands there
SOLID_POINTS = 2  # real points standing within the player's disc that make a position solid (3 until session 42,
# which missed a low rock's rim seen as two points; no free move on the cached walks is taken for a blocked one)
GROUND_REACH = 1.5  # metres: the ground under a position is a plane fitted to the real points this near it
GROUND_POINTS = 6  # fewer real points than this within GROUND_REACH: nothing known there, nothing solid
GROUND_BAND = 0.1  # metres: a refit keeps the points at most this far above the last fit (its lower envelope)
GROUND_FITS = 4  # least-squares fits of that plane: the first to all of them, then to the lower envelope
STAND_REACH = 2.0  # metres: `stand` fits the ground to the real points this near the eye horizontally
STAND_POINTS = 10  # points of that ground's lower envelope `stand` needs
STAND_SIDES = 3  # quadrants around the eye (of 4) that must hold two of them: ground seen all around, not beside
STAND_OFF = 0.3  # metres: an eye nearer than this to EYE_HEIGHT over that ground is left where the camera head put it
CROWN_CLEARANCE = 0.2  # metres below the eye: real points higher than this are a crown or eaves the player walks under


@struct.dataclass
class Memory:
    points: jax.Array  # (B, N, 3) world positions
    colors: jax.Array  # (B, N, 3) signed RGB in [-1, 1]
    radius: jax.Array  # (B, N) world-space footprint radius (metres)
    valid: jax.Array  # (B, N) bool
    cursor: jax.Array  # (B,) int32: next ring position to write
    views: jax.Array  # (B, V, 4, 4) camera-to-world pose of each pinned frame (at _NOWHERE while empty)
    trail: jax.Array  # (B, S, 3) camera positions, a ring (at _NOWHERE while empty)
    trail_cursor: jax.Array  # (B,) int32
    pinned: int = struct.field(pytree_node=False, default=0)  # points in the pinned region (P)

    @property
    def capacity(self) -> int:
        return self.points.shape[1]

    def stood(self, pose_B44) -> "Memory":
        """The memory with the camera's position added to the trail."""
        rows = jnp.arange(self.trail.shape[0])
        return self.replace(trail=self.trail.at[rows, self.trail_cursor].set(pose_B44[:, :3, 3]),
                            trail_cursor=(self.trail_cursor + 1) % self.trail.shape[1])


def empty(batch: int, pinned: int, ring: int, views: int = 1) -> Memory:
    """An empty memory of `pinned` points in `views` pinned frames and `ring` dreamed points."""
    if views < 1 or pinned % views:
        raise ValueError(f"{pinned} pinned points do not split into {views} views")
    n = pinned + ring
    nowhere = jnp.eye(4).at[:3, 3].set(_NOWHERE)
    return Memory(points=jnp.zeros((batch, n, 3)), colors=jnp.zeros((batch, n, 3)), radius=jnp.zeros((batch, n)),
                  valid=jnp.zeros((batch, n), bool), cursor=jnp.zeros((batch,), jnp.int32),
                  views=jnp.broadcast_to(nowhere, (batch, views, 4, 4)), trail=jnp.full((batch, TRAIL, 3), _NOWHERE),
                  trail_cursor=jnp.zeros((batch,), jnp.int32), pinned=pinned)


def surfels(depth_BHW, pose_B44, intrinsics_33, sky):
    """Points (B, HW, 3), validity (B, HW) and footprint radius (B, HW) of depth maps."""
    pts, ok = jax.vmap(lambda d, p: unproject(d, p, intrinsics_33, sky=sky))(depth_BHW, pose_B44)
    cam_depth = jnp.einsum("bnc,bc->bn", pts - pose_B44[:, None, :3, 3], -pose_B44[:, :3, 2])
    return pts, ok, FOOTPRINT * cam_depth / intrinsics_33[0, 0]


def pin(mem: Memory, index: int, rgb_BHWC, depth_BHW, pose_B44, intrinsics_33) -> Memory:
    """Write a real frame, every pixel and its sky, into pinned slot `index`."""
    b, h, w, _ = rgb_BHWC.shape
    pts, ok, rad = surfels(depth_BHW, pose_B44, intrinsics_33, sky=True)
    at = lambda buf, new: jax.lax.dynamic_update_slice_in_dim(buf, new, index * h * w, axis=1)
    return mem.replace(points=at(mem.points, pts), colors=at(mem.colors, rgb_BHWC.reshape(b, -1, 3)),
                       radius=at(mem.radius, rad), valid=at(mem.valid, ok),
                       views=mem.views.at[:, index].set(pose_B44)).stood(pose_B44)


def start_palette(frames_BVHWC, rows: int):
    """The colours a dream paints with per image row, (B, H, PALETTE_SIZE, 4): the most frequent colours among
    the real start frames' pixels (uint8 frames) within `rows` rows of it (every PALETTE_STRIDE-th column; exact
    pixel colours, the first repeated where there are fewer), as signed RGB, and the log of each one's share of
    those pixels. The camera is level, so a row is an elevation: sky above, ground below. Computed once per
    dream, from the frames it pins."""
    b, _, res = frames_BVHWC.shape[:3]
    frames = frames_BVHWC[:, :, :, ::PALETTE_STRIDE]  # (B, V, H, W', C)
    near = jnp.clip(jnp.arange(res)[:, None] + jnp.arange(-rows, rows + 1)[None], 0, res - 1)  # (H, 2 rows + 1)
    cand = jnp.moveaxis(frames[:, :, near], 2, 1).reshape(b, res, -1, 3)  # (B, H, N, C)
    levels = cand.astype(jnp.int32)
    keys = (levels[..., 0] * 256 + levels[..., 1]) * 256 + levels[..., 2]

    def frequent(keys_N):
        uniq, counts = jnp.unique(keys_N, size=keys_N.shape[0], fill_value=-1, return_counts=True)
        counts, top = jax.lax.top_k(counts, PALETTE_SIZE)
        return jnp.where(counts > 0, uniq[top], uniq[top[0]]), jnp.where(counts > 0, counts, counts[0])

    kept, counts = jax.vmap(jax.vmap(frequent))(keys)  # (B, H, PALETTE_SIZE) each
    rgb = jnp.stack([kept // 65536, kept // 256 % 256, kept % 256], -1) / 127.5 - 1.0
    return jnp.concatenate([rgb, jnp.log(counts / keys.shape[-1])[..., None]], -1)


def nearest_colour(rgb_BHWC, palette_BHNC, prior: float = 0.0, reach: float = 0.0):
    """Each pixel's likeliest colour among the candidates of its row (`start_palette`): the least squared RGB
    distance minus 2 prior^2 log(share); with prior 0, the nearest. With `reach` > 0, a pixel farther than
    `reach` (signed RGB) from every candidate keeps its own colour."""
    colours = palette_BHNC[..., :3]
    cross = jnp.einsum("bhwc,bhnc->bhwn", rgb_BHWC, colours)
    gap = jnp.sum(colours ** 2, -1)[:, :, None] - 2 * cross  # (B, H, W, N): |x - p|^2 - |x|^2
    j = jnp.argmin(gap - 2 * prior ** 2 * palette_BHNC[:, :, None, :, 3], -1)  # (B, H, W)
    out = jnp.take_along_axis(colours[:, :, None], j[..., None, None], 3)[..., 0, :]
    if reach > 0:
        nearest = gap.min(-1) + jnp.sum(rgb_BHWC ** 2, -1)
        out = jnp.where((nearest > reach ** 2)[..., None], rgb_BHWC, out)
    return out


def flying_pixels(depth_BHW):
    """Pixels stranded between two surfaces, as a blurred depth edge leaves them: more than FLYING_EDGE of
    their depth nearer than the farthest and farther than the nearest of their 3x3 neighbours (sky ignored).
    A true edge pixel lies on one of the two surfaces, and a ground plane changes less than that per pixel."""
    pad = jnp.pad(depth_BHW, ((0, 0), (1, 1), (1, 1)), mode="edge")
    h, w = depth_BHW.shape[1:]
    win = jnp.stack([pad[:, i:i + h, j:j + w] for i in range(3) for j in range(3)], 0)
    near = jnp.where(win > MIN_DEPTH, win, jnp.inf).min(0)
    far = jnp.where(win > MIN_DEPTH, win, 0.0).max(0)
    gap = FLYING_EDGE * depth_BHW
    return (depth_BHW > MIN_DEPTH) & (depth_BHW - near > gap) & (far - depth_BHW > gap)


def write(mem: Memory, rgb_BHWC, depth_BHW, pose_B44, intrinsics_33, new_BHW, near: float = 0.0) -> Memory:
    """Append the pixels of a dreamed frame flagged in `new_BHW` (what memory did not know at full
    resolution), minus flying pixels, to the ring. A dreamed sky is stored as sky (a map by direction).
    With `near` > 0, points within `near` metres of the eye that stand higher than NEAR_GROUND below it are not
    written either: shown once, repainted from the last frames at the next step (`ModelConfig.transient_near`)."""
    b, h, w, _ = rgb_BHWC.shape
    pts, ok, rad = surfels(depth_BHW, pose_B44, intrinsics_33, sky=True)
    keep = (new_BHW & ~flying_pixels(depth_BHW)).reshape(b, -1) & ok
    if near > 0:
        rel = pts - pose_B44[:, None, :3, 3]
        keep &= (jnp.linalg.norm(rel, axis=-1) >= near) | (rel[..., 1] <= -NEAR_GROUND)
    ring = mem.capacity - mem.pinned
    order = jnp.cumsum(keep, axis=1) - 1
    pos = jnp.where(keep, mem.pinned + (mem.cursor[:, None] + order) % ring, mem.capacity)  # capacity: dropped
    rows = jnp.arange(b)[:, None]
    put = lambda buf, new: buf.at[rows, pos].set(new, mode="drop")
    return mem.replace(points=put(mem.points, pts), colors=put(mem.colors, rgb_BHWC.reshape(b, -1, 3)),
                       radius=put(mem.radius, rad), valid=put(mem.valid, True),
                       cursor=((mem.cursor + keep.sum(1)) % ring).astype(jnp.int32)).stood(pose_B44)


def settle(mem: Memory, pose_B44):
    """The pose at the height the camera had where it stood before, when it is back within SAME_PLACE of
    that spot on the ground (the nearest such spot); else unchanged."""
    gap = jnp.linalg.norm(mem.trail[:, :, ::2] - pose_B44[:, None, :3:2, 3], axis=-1)  # (B, S): x and z
    j = jnp.argmin(gap, 1)
    back = jnp.take_along_axis(gap, j[:, None], 1)[:, 0] < SAME_PLACE
    height = jnp.take_along_axis(mem.trail[:, :, 1], j[:, None], 1)[:, 0]
    return pose_B44.at[:, 1, 3].set(jnp.where(back, height, pose_B44[:, 1, 3]))


def ground_fit(dx, dz, y, near, fits: int = GROUND_FITS):
    """Heights (..., P) of points above the ground plane, given their horizontal offsets `dx`, `dz` from where
    the ground is wanted and their heights `y` (..., P), and which of them may be ground (`near`). The plane is
    fitted by least squares to the near points, then again `fits` - 1 times to those at most GROUND_BAND above
    the last fit: what stands on the ground lifts the first fit, and the refits sink it to the ground's lower
    envelope, tilted with the terrain. Heights are taken from the near points' mean, so the solve is well
    scaled anywhere."""
    return _plane(dx, dz, y, near, fits)[0]


def _plane(dx, dz, y, near, fits: int = GROUND_FITS):
    """`ground_fit`'s heights above the plane (..., P), the plane's height where dx = dz = 0 (...), and the points
    within GROUND_BAND above it (..., P) bool: its lower envelope."""
    w = near.astype(y.dtype)
    mean = (w * y).sum(-1, keepdims=True) / jnp.maximum(w.sum(-1, keepdims=True), 1.0)
    y = y - mean
    basis = (jnp.ones_like(dx), dx, dz)
    for _ in range(fits):
        normal = jnp.stack([jnp.stack([(w * a * b).sum(-1) for b in basis], -1) for a in basis], -2)
        moment = jnp.stack([(w * a * y).sum(-1) for a in basis], -1)[..., None]
        coef = jnp.linalg.solve(normal + 1e-4 * jnp.eye(3), moment)
        above = y - (coef[..., 0, :] + coef[..., 1, :] * dx + coef[..., 2, :] * dz)
        w = (near & (above < GROUND_BAND)).astype(y.dtype)
    return above, mean[..., 0] + coef[..., 0, 0], w > 0


def stand(mem: Memory, pose_B44):
    """The pose with its eye EYE_HEIGHT over the ground the real start frames show around it, where they show it
    all around (STAND_POINTS points of its lower envelope within STAND_REACH, in at least STAND_SIDES of the four
    quadrants around the eye, two in each) and the eye is more than STAND_OFF from there; else unchanged
    (`ModelConfig.real_ground`). The camera head, trained mostly on gentle terrain, loses the eye's height on steep
    slopes; what the start frames saw of the ground does not (docs/model.md, session 44)."""
    if not mem.pinned:
        return pose_B44
    points, eye = mem.points[:, :mem.pinned], pose_B44[:, :3, 3]
    dx, dz = points[..., 0] - eye[:, None, 0], points[..., 2] - eye[:, None, 2]
    near = (mem.valid[:, :mem.pinned] & (jnp.hypot(dx, dz) < STAND_REACH)
            & (points[..., 1] < eye[:, None, 1] - CROWN_CLEARANCE))
    _, ground, fitted = _plane(dx, dz, points[..., 1], near)
    sides = sum(((fitted & (sx * dx > 0) & (sz * dz > 0)).sum(-1) >= 2).astype(jnp.int32)
                for sx in (-1, 1) for sz in (-1, 1))
    height = ground + EYE_HEIGHT
    move = (fitted.sum(-1) >= STAND_POINTS) & (sides >= STAND_SIDES) & (jnp.abs(height - eye[:, 1]) > STAND_OFF)
    return pose_B44.at[:, 1, 3].set(jnp.where(move, height, eye[:, 1]))


def sky_colour(mem: Memory):
    """The real start frames' sky: the mean colour of their sky points (those stored SKY_DEPTH along their rays),
    (B, 3) signed, and whether they show any sky (B,) bool."""
    b, p, views = mem.points.shape[0], mem.pinned, mem.views.shape[1]
    if not p:
        return jnp.zeros((b, 3)), jnp.zeros((b,), bool)
    from_view = mem.points[:, :p].reshape(b, views, p // views, 3) - mem.views[:, :, None, :3, 3]
    sky = (jnp.linalg.norm(from_view, axis=-1).reshape(b, p) > SKY_DEPTH / 2) & mem.valid[:, :p]
    n = sky.sum(1)
    return (mem.colors[:, :p] * sky[..., None]).sum(1) / jnp.maximum(n, 1)[:, None], n > 0


def solid(mem: Memory, eyes_BO3, radius: float):
    """Whether a player of disc `radius` with its eye at each position (B, O, 3) would stand in something the
    real start frames show (B, O) bool: at least SOLID_POINTS pinned points within `radius` of it horizontally
    standing more than SOLID_ABOVE above the ground there and more than CROWN_CLEARANCE below the eye (a player
    walks under a tree's crown or a roof's eaves: a first version that counted points up to 0.4 m above the eye
    stopped a revisit under one, and one that counted them up to the eye stopped held walks for good under crowns
    seen 18 m away, docs/model.md session 24).
    The ground is one plane fitted to the lower envelope of the pinned points within GROUND_REACH of the
    positions' centroid (`ground_fit`; the positions of one step lie within a move of each other), so a rock
    0.2 m high stops the player as the world does, and a slope does not (session 38: the lowest point in the
    disc as the ground took a slope for a rock at any lower threshold than 0.4 m). Where the start frames saw
    fewer than GROUND_POINTS points within reach, nothing is solid."""
    if not mem.pinned:
        return jnp.zeros(eyes_BO3.shape[:2], bool)
    points, eyes_y = mem.points[:, :mem.pinned], eyes_BO3[..., 1]  # (B, P, 3); sky points lie 1 km away
    centre = eyes_BO3.mean(1)  # (B, 3)
    dx, dz = points[..., 0] - centre[:, None, 0], points[..., 2] - centre[:, None, 2]
    under = mem.valid[:, :mem.pinned] & (points[..., 1] < eyes_y.max(1, keepdims=True) - CROWN_CLEARANCE)
    near = under & (jnp.hypot(dx, dz) < GROUND_REACH)
    standing = under & (ground_fit(dx, dz, points[..., 1], near) > SOLID_ABOVE)  # (B, P)
    gap = jnp.hypot(points[:, None, :, 0] - eyes_BO3[..., 0:1], points[:, None, :, 2] - eyes_BO3[..., 2:3])
    under_eye = points[:, None, :, 1] < eyes_y[..., None] - CROWN_CLEARANCE
    count = (standing[:, None] & under_eye & (gap < radius)).sum(-1)
    return (count >= SOLID_POINTS) & (near.sum(-1, keepdims=True) >= GROUND_POINTS)


def _fill_pinholes(rgb_HWC, depth_HW, known_HW, size_HW):
    """Fill a pixel that is empty, or seen through a gap (much farther than both neighbours of a left/right
    or up/down pair, whose points are magnified, so they leave gaps), with the mean of that known pair."""
    pad = lambda x, fill: jnp.pad(x, ((1, 1), (1, 1)) + ((0, 0),) * (x.ndim - 2), constant_values=fill)
    rp, dp, kp = pad(rgb_HWC, 0.0), pad(jnp.where(known_HW, depth_HW, jnp.inf), jnp.inf), pad(known_HW, False)
    sp = pad(size_HW, 0.0)
    h, w = depth_HW.shape
    shift = lambda x, i, j: x[1 + i:1 + i + h, 1 + j:1 + j + w]
    out_rgb, out_d, filled = rgb_HWC, depth_HW, jnp.zeros_like(known_HW)
    for (i1, j1), (i2, j2) in (((0, -1), (0, 1)), ((-1, 0), (1, 0))):
        both = shift(kp, i1, j1) & shift(kp, i2, j2)
        pair_d = 0.5 * (shift(dp, i1, j1) + shift(dp, i2, j2))
        magnified = jnp.minimum(shift(sp, i1, j1), shift(sp, i2, j2)) > 1.05
        behind = ~known_HW | (magnified & (out_d > 1.15 * jnp.maximum(shift(dp, i1, j1), shift(dp, i2, j2))))
        take = both & behind & ~filled
        out_rgb = jnp.where(take[..., None], 0.5 * (shift(rp, i1, j1) + shift(rp, i2, j2)), out_rgb)
        out_d = jnp.where(take, pair_d, out_d)
        filled = filled | take
    return out_rgb, out_d, filled


def render_points(points_N3, colors_NC, radius_N, valid_N, pose_44, intrinsics_33, res: int, views: int = 0,
                  nearest=-1, levels: int = pyramid.LEVELS):
    """Colours (H,W,C), depth (H,W; 0 where unknown), coverage (H,W) and full-resolution knowledge (H,W), splatted
    into a pyramid of `levels` levels. With `views` (the points are that many real frames' pixels, in order), a
    silhouette cell the view `nearest` sees past takes the far surface's colour in the share of the views that do
    (`pyramid.edge_share`)."""
    seg, d, diameter, ok = pyramid.samples(points_N3, radius_N, valid_N, pose_44, intrinsics_33, res, levels)
    colors_SC = jnp.tile(colors_NC, (2, 1))
    cols, deps, wts, size0 = pyramid.splat(seg, d, diameter, ok, colors_SC, res, levels)
    zmin = deps.min(0)
    near = (deps <= zmin * (1 + DEPTH_TOLERANCE)) & (wts > 0)
    weight = near * wts
    total = weight.sum(0)
    known = total > 0
    rgb = (cols * weight[..., None]).sum(0) / jnp.maximum(total, 1e-6)[..., None]
    depth = jnp.where(known, zmin, 0.0)
    fine = near[0]
    rgb, depth, filled = _fill_pinholes(rgb, depth, known & fine, size0)
    fine = fine | filled
    known = known | filled
    if views:
        share, far = pyramid.edge_share(seg, d, ok, colors_SC, res, views, nearest, levels)
        rgb = rgb + share[..., None] * (far - rgb)
    return rgb, jnp.where(known, depth, 0.0), known.astype(jnp.float32), fine


def render(mem: Memory, pose_B44, intrinsics_33, res: int, surfaces: bool = False, edges: bool = False,
           levels: int = pyramid.LEVELS):
    """The memory seen from each pose: rgb (B,H,W,3), depth (B,H,W), coverage (B,H,W), fine (B,H,W) bool and
    real (B,H,W) bool: the pixels drawn from the real frames. Points are splatted into `levels` pyramid levels.

    The real frames first: wherever they cover a pixel (sky included) they win, so a revisited view is the
    real one; dreamed content fills the rest. With `surfaces` (`ModelConfig.real_surfaces`), where the real
    frames' points are magnified or leave holes, the real frames are drawn as whole surfaces (`_surfaces`).
    With `edges` (`ModelConfig.edge_share`), the real frames' silhouettes are drawn as the view taken nearest the
    camera sees them, in the share of the views that agree (`pyramid.edge_share`). Back within SAME_PLACE and
    SAME_HEADING of where a real frame was taken, that frame alone draws every pixel it knows (`_same_view`)."""
    views = mem.views.shape[1] if edges and mem.pinned else 0
    nearest = _nearest_view(mem, pose_B44) if views else jnp.full(pose_B44.shape[:1], -1)
    draw = lambda sl, v: jax.vmap(lambda p, c, r, ok, pose, near: render_points(p, c, r, ok, pose, intrinsics_33,
                                                                               res, v, near, levels))(
        mem.points[:, sl], mem.colors[:, sl], mem.radius[:, sl], mem.valid[:, sl], pose_B44, nearest)
    rgb_r, dep_r, cov_r, fine_r = draw(slice(0, mem.pinned), views)
    rgb_g, dep_g, cov_g, fine_g = draw(slice(mem.pinned, None), 0)
    real = (cov_r > 0) & (fine_r | ~fine_g)  # a real pixel yields only to dreamed detail where it is magnified
    rgb, depth, fine = jnp.where(real[..., None], rgb_r, rgb_g), jnp.where(real, dep_r, dep_g), fine_r | fine_g
    cover = jnp.maximum(cov_r, cov_g)
    if mem.pinned and surfaces:
        rgb, depth, cover, fine, real = _surfaces(mem, pose_B44, intrinsics_33, rgb, depth, cover, fine, real)
    if mem.pinned:  # back where a real frame was taken, that frame is the view, as it was seen
        rgb_v, dep_v, fine_v = _same_view(mem, pose_B44, intrinsics_33, res, levels)
        rgb, depth = jnp.where(fine_v[..., None], rgb_v, rgb), jnp.where(fine_v, dep_v, depth)
        fine, real = fine | fine_v, real | fine_v
    return rgb, depth, cover, fine, real


def _nearest_view(mem: Memory, pose_B44):
    """The pinned view taken nearest each camera (B,): metres apart plus twice one minus the cosine between
    their headings."""
    gap = jnp.linalg.norm(mem.views[:, :, :3, 3] - pose_B44[:, None, :3, 3], axis=-1)
    facing = jnp.einsum("bvc,bc->bv", mem.views[:, :, :3, 2], pose_B44[:, :3, 2])
    return jnp.argmin(gap + 2.0 * (1.0 - facing), 1)


def _surfaces(mem: Memory, pose_B44, intrinsics_33, rgb, depth, cover, fine, real):
    """The drawing with the real frames drawn as surfaces (`surface.draw`) where their points are magnified
    more than surface.MAGNIFIED or real points drew nothing, each ray started at the real depth drawn there,
    or in a hole at the disparity filled in from the real pixels around it; a dreamed surface drawn nearer
    stays in front. What they draw counts as real and known at full resolution."""
    b, v = mem.views.shape[:2]
    side = round((mem.pinned // v) ** 0.5)
    frames = lambda x: x[:, :mem.pinned].reshape((b, v, side, side) + x.shape[2:])
    filled, _ = fill_holes(jnp.where(real, 1.0 / jnp.maximum(depth, MIN_DEPTH), 0.0)[..., None], real)
    guess = jnp.where(real, depth, jnp.where(filled[..., 0] > 1e-3, 1.0 / jnp.maximum(filled[..., 0], 1e-3), 0.0))
    s_rgb, s_depth, drawn, area = jax.vmap(surface.draw, in_axes=(0, 0, 0, 0, 0, None, 0))(
        frames(mem.points), frames(mem.colors), frames(mem.valid), mem.views, pose_B44, intrinsics_33, guess)
    dreamed_in_front = (cover > 0) & ~real & (depth < s_depth * (1 - DEPTH_TOLERANCE))
    take = drawn & ((area < surface.MAGNIFIED) | ~real) & ~dreamed_in_front
    return (jnp.where(take[..., None], s_rgb, rgb), jnp.where(take, s_depth, depth),
            jnp.maximum(cover, take.astype(cover.dtype)), fine | take, real | take)


def _same_view(mem: Memory, pose_B44, intrinsics_33, res: int, levels: int):
    """The pinned frame taken nearest the camera, drawn alone, where one was taken within SAME_PLACE and
    SAME_HEADING of it: rgb, depth and fine (False everywhere where none was). Points from several frames,
    each sampled a fraction of a pixel apart, would blur and shift its edges. Drawn only when some camera
    of the batch is back at such a place (a step elsewhere does not pay for it)."""
    b, v = mem.views.shape[:2]
    gap = jnp.linalg.norm(mem.views[:, :, :3, 3] - pose_B44[:, None, :3, 3], axis=-1)
    facing = jnp.einsum("bvc,bc->bv", mem.views[:, :, :3, 2], pose_B44[:, :3, 2])
    same = (gap < SAME_PLACE) & (facing > jnp.cos(jnp.radians(SAME_HEADING)))
    j = jnp.argmin(jnp.where(same, gap, jnp.inf), 1)

    def draw():
        frame = lambda x: jnp.take_along_axis(x[:, :mem.pinned].reshape((b, v, -1) + x.shape[2:]),
                                              j.reshape((b, 1, 1) + (1,) * (x.ndim - 2)), 1)[:, 0]
        rgb, depth, _, fine = jax.vmap(lambda p, c, r, ok, pose: render_points(p, c, r, ok, pose, intrinsics_33,
                                                                               res, levels=levels))(
            frame(mem.points), frame(mem.colors), frame(mem.radius), frame(mem.valid), pose_B44)
        return rgb, depth, fine & same.any(1)[:, None, None]

    nothing = lambda: (jnp.zeros((b, res, res, 3), mem.colors.dtype), jnp.zeros((b, res, res), mem.points.dtype),
                       jnp.zeros((b, res, res), bool))
    return jax.lax.cond(same.any(), draw, nothing)

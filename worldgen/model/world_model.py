"""The world model: camera motion from the action, a persistent world memory, and a flow-matching U-Net
that completes what the memory shows into the next RGB frame plus disparity.

Dimension keys: B batch, T time, K context frames, H height, W width, C channels.

Per step (see `step`): predict the camera delta from (action, last disparity) -> move the pose (back where
it stood before, at the height it had there: `memory.settle`) -> draw the
world memory (`worldgen.model.memory`) into it -> sample the next frame with `sample_steps` flow-matching
steps conditioned on that drawing, the last two frames and the action (with `ModelConfig.show_memory`, the
frame keeps the drawing wherever memory knows the pixel: `complete`) -> write to memory only what it did
not know at full resolution (`advance`). Memory has a fixed capacity, so a step costs the same at step 10
and step 10,000; the real starting frames are pinned. Every frame fed back is rounded to 8 bits, as shown.
With `geometry=False` the memory inputs are zero and the same network is a plain 2D action-conditioned
predictor.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx, struct

from worldgen.errors import WorldgenError
from worldgen.model import memory as mem, sky
from worldgen.model.config import ModelConfig
from worldgen.model.fill import fill_holes
from worldgen.model.geometry import apply_delta, depth_to_disparity, disparity_to_depth, heading_frame
from worldgen.model.motion import MOVE_OUTCOMES, chosen_motion, collide, move_outcomes
from worldgen.model.unet import UNet, deepen as unet_deepen, timestep_embedding

COND_CHANNELS = 12  # warp rgb 3, warp disparity 1, warp mask 1, last rgb 3, previous rgb 3, last disparity 1
# (+ 1 with ModelConfig.provenance: the warp pixel comes from a real frame)
POSE_POOL = 8  # the pose head sees the last disparity average-pooled to POSE_POOL x POSE_POOL
CONTEXT_NOISE_MAX = 0.15  # training adds colour noise of standard deviation up to this to the context frames
# (0.9 until session 14; a classifier that also learned from the dream's own disparity is less sure, rightly)
CAMERA_PARTS = ("pose_in", "pose_hidden", "pose_out", "turn", "stride", "outcome_in", "outcome_hidden", "outcome")
# the camera head's parameters (`WorldModel.pose_head`): the rest is the colour network (`WorldModel.denoise`)
CAMERA = nnx.All(nnx.Param, nnx.Any(*(nnx.PathContains(name) for name in CAMERA_PARTS)))
COLOUR = nnx.All(nnx.Param, nnx.Not(CAMERA))  # nnx filters of the two parts, for training one alone


class WorldModel(nnx.Module):
    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        self.config = config
        d = config.embed_dim
        self.action_embed = nnx.Embed(config.num_actions, d, rngs=rngs)
        self.time_mlp = nnx.Linear(d, d, rngs=rngs)
        if config.noise_level:  # zero-initialised: grafted onto a trained model, it changes nothing until trained
            self.noise_mlp = nnx.Linear(d, d, kernel_init=nnx.initializers.zeros, rngs=rngs)
        self.unet = UNet(3 + cond_channels(config), 4, config.channels, d, rngs=rngs)
        self.pose_in = nnx.Linear(POSE_POOL * POSE_POOL + config.num_actions + 2, 128, rngs=rngs)
        self.pose_hidden = nnx.Linear(128, 128, rngs=rngs)
        self.pose_out = nnx.Linear(128, 3, kernel_init=nnx.initializers.zeros, rngs=rngs)
        self.turn = nnx.Param(jnp.zeros((config.num_actions,)))  # yaw (rad) of each action, learned
        if config.move_outcomes:  # the full step of each action (forward m, right m), and which outcome it has:
            # an MLP of its own, so that learning to classify does not pull on the regression's features
            self.stride = nnx.Param(jnp.zeros((config.num_actions, 2)))
            self.outcome_in = nnx.Linear(POSE_POOL * POSE_POOL + config.num_actions + 2, 128, rngs=rngs)
            self.outcome_hidden = nnx.Linear(128, 128, rngs=rngs)
            self.outcome = nnx.Linear(128, MOVE_OUTCOMES, kernel_init=nnx.initializers.zeros, rngs=rngs)

    def denoise(self, x_BHWC, t_B, cond_BHWC, action_B, noise_B=None):
        """x-prediction: clean RGB in [-1, 1] and disparity, from noisy RGB at flow time t.

        The network predicts a correction to a base image: the warp where it covers, else the last frame (with
        `config.fill` the warp channels are already filled everywhere, see `conditioning`). `noise_B`: the
        standard deviation of the colour noise on the context (training only; None = 0, as at inference),
        an input with `config.noise_level`.
        """
        d = self.config.embed_dim
        emb = self.action_embed(action_B) + self.time_mlp(timestep_embedding(t_B, d))
        if self.config.noise_level:
            noise_B = jnp.zeros_like(t_B) if noise_B is None else noise_B
            emb = emb + self.noise_mlp(timestep_embedding(noise_B / CONTEXT_NOISE_MAX, d))
        emb = nnx.silu(emb)
        out = self.unet(jnp.concatenate([x_BHWC, cond_BHWC], axis=-1), emb)
        base_rgb, base_disp = cond_BHWC[..., 0:3], cond_BHWC[..., 3]
        if not self.config.fill:
            mask = cond_BHWC[..., 4:5]
            base_rgb = base_rgb + (1 - mask) * cond_BHWC[..., 5:8]
            base_disp = base_disp + (1 - mask[..., 0]) * cond_BHWC[..., 11]
        return base_rgb + out[..., :3], base_disp + out[..., 3]

    def pose_delta(self, last_disp_BHW, action_B, pose_B44):
        """(forward m, right m, up m, yaw rad) camera motion for the action from pose_B44, in its heading frame.
        With `config.move_outcomes`, the horizontal move is the most likely outcome where the head is at least
        `motion.CONFIDENT` of it, else the regressed move."""
        return chosen_motion(*self.pose_head(last_disp_BHW, action_B, pose_B44))

    def pose_head(self, last_disp_BHW, action_B, pose_B44):
        """(regressed motion_B4, outcomes_BO2 or None, logits_BO or None).

        The move depends on the scene (a move can be blocked and slide along the world's axes, the eye follows
        the terrain), so an MLP sees the action, the pooled last disparity and the compass heading. A turn is
        never blocked, so yaw is a learned constant per action: an error in it cannot depend on the scene and
        drift a dream's heading. The MLP regresses the move; with `config.move_outcomes` it also classifies
        which of the player's MOVE_OUTCOMES the learned full step of the action has (`move_outcomes`), with an
        MLP of its own on the same inputs, so a step it is sure of is exact rather than an average over the
        chance of being blocked."""
        b, h, w = last_disp_BHW.shape
        pooled = last_disp_BHW.reshape(b, POSE_POOL, h // POSE_POOL, POSE_POOL, w // POSE_POOL).mean((2, 4))
        heading = jax.vmap(heading_frame)(pose_B44)[0][:, ::2]  # horizontal forward: world x and z
        x = jnp.concatenate([pooled.reshape(b, -1), jax.nn.one_hot(action_B, self.config.num_actions), heading], -1)
        hidden = nnx.silu(self.pose_hidden(nnx.silu(self.pose_in(x))))
        move = self.pose_out(hidden)
        yaw = self.turn[...][action_B][:, None]
        motion = jnp.concatenate([move, yaw], -1)
        if not self.config.move_outcomes:
            return motion, None, None
        logits = self.outcome(nnx.silu(self.outcome_hidden(nnx.silu(self.outcome_in(x)))))
        return motion, move_outcomes(self.stride[...][action_B], pose_B44), logits


def camera_motion(model: WorldModel, state, action_B):
    """The camera head's motion from the state's pose (`WorldModel.pose_delta`); with `config.collide`, a move
    into something the real start frames show is blocked as the player's is (`collide`)."""
    motion, outcomes, logits = model.pose_head(state.last_disp, action_B, state.pose)
    chosen = chosen_motion(motion, outcomes, logits)
    if not model.config.collide:
        return chosen
    moves = jnp.abs(model.stride[...][action_B]).sum(-1) > 0.1  # a full step is 0.5 m; turns learned none
    return collide(state.memory, state.pose, chosen, outcomes, moves)


OPTIONS = ("provenance", "fill", "noise_level", "move_outcomes")  # inputs or weights: can only be switched on
# inference settings without weights: set as given
RULES = ("show_memory", "sample_steps", "sample_temperature", "palette_rows", "palette_prior", "palette_reach",
         "transient_near", "collide", "fill_behind", "fill_edge", "real_surfaces", "edge_share", "ground_within",
         "sky_above", "real_ground", "pyramid_levels")


def with_options(model: WorldModel, **options) -> WorldModel:
    """The same trained model with `ModelConfig` options changed. OPTIONS (`provenance`, `fill`, `noise_level`,
    `move_outcomes`) can only be switched on: their new weights start at zero (the provenance channel of the
    stem, the noise-level layer, the move-outcome classifier, which is then never sure), so the result makes
    exactly the same frames until it is trained; `fill` changes what the network starts from and needs
    training to be used well. RULES (`show_memory`, `sample_steps`, `sample_temperature`, `palette_rows`,
    `palette_prior`, `palette_reach`, `transient_near`, `collide`, `fill_behind`, `fill_edge`, `real_surfaces`,
    `edge_share`, `ground_within`, `sky_above`, `real_ground`, `pyramid_levels`) use no weights and are set as given."""
    unknown = set(options) - set(OPTIONS) - set(RULES)
    if unknown:
        raise WorldgenError(f"unknown model options {sorted(unknown)}: expected {', '.join(OPTIONS + RULES)}")
    def value(k, v):  # a rule as its field's type, named when it is not one
        kind = type(getattr(model.config, k))
        try:
            return kind(v)
        except ValueError:
            raise WorldgenError(f"model option {k} = {v!r}: expected {kind.__name__}") from None

    config = dataclasses.replace(model.config, **{
        k: value(k, v) if k in RULES else getattr(model.config, k) or bool(v) for k, v in options.items()})
    if config == model.config:
        return model
    new = WorldModel(config, rngs=nnx.Rngs(0))
    params = nnx.state(model, nnx.Param)
    if config.provenance and not model.config.provenance:
        kernel = params["unet"]["stem"]["kernel"]
        params["unet"]["stem"]["kernel"] = nnx.Param(jnp.concatenate(
            [kernel[...], jnp.zeros(kernel.shape[:2] + (1, kernel.shape[3]), kernel.dtype)], axis=2))
    nnx.update(new, params)
    return new


def deepen(model: WorldModel, width: int) -> WorldModel:
    """The same trained model with one more U-Net level of `width` channels at the bottom (`unet.deepen`): it
    makes exactly the same frames until it is trained, and then sees twice as far across the frame."""
    config = dataclasses.replace(model.config, channels=model.config.channels + (width,))
    new = WorldModel(config, rngs=nnx.Rngs(0))
    nnx.update(new, nnx.state(model, nnx.Not(nnx.PathContains("unet"))))
    new.unet = unet_deepen(model.unet, new.unet)
    return new


# --- conditioning ----------------------------------------------------------------------------------

def to_signed(rgb_uint8):
    return rgb_uint8.astype(jnp.float32) / 127.5 - 1.0


def to_uint8(rgb_signed):
    return jnp.clip(jnp.round((rgb_signed + 1.0) * 127.5), 0, 255).astype(jnp.uint8)


def cond_channels(config: ModelConfig) -> int:
    return COND_CHANNELS + int(config.provenance)


def conditioning(config: ModelConfig, warp_rgb, warp_disp, warp_mask, last_rgb, prev_rgb, last_disp, real):
    """The conditioning channels (everything but x_t), all (B,H,W,.): 12, and with `config.provenance` 13 (`real`:
    the warp pixels that come from real frames). Where the warp is empty its channels are zero, or with
    `config.fill` the warp's holes filled from around them (the last frame where the warp is empty throughout;
    `config.fill_behind`: a hole between two known pixels of a row from the farther; `config.fill_edge`: a strip at
    the frame's edge from its row's background)."""
    warp = jnp.concatenate([warp_rgb * warp_mask[..., None], warp_disp[..., None]], -1)
    if config.fill:
        filled, any_known = fill_holes(warp, warp_mask > 0.5, config.fill_behind, config.fill_edge, real > 0.5)
        last = jnp.concatenate([last_rgb, last_disp[..., None]], -1)
        warp = jnp.where(any_known[:, None, None, None], filled, last)
    parts = [warp, warp_mask[..., None], last_rgb, prev_rgb, last_disp[..., None]]
    return jnp.concatenate(parts + ([real.astype(warp_disp.dtype)[..., None]] if config.provenance else []), -1)


def complete(model: WorldModel, cond_BHWC, fine_BHW, action_B, key, temperature, palette_BHNC=None):
    """The next frame, rgb (signed) and disparity: sampled by the network, with the network's colours moved
    to their likeliest in `palette_BHNC` (`start_palette`, `config.palette_prior`) when one is given (those
    farther than `config.palette_reach` from every palette colour stay the network's), and with
    `config.show_memory` the memory's colours (the warp channels of `cond_BHWC`) wherever memory knows the pixel
    at full resolution. The disparity stays the network's everywhere: the memory's drawn disparity made long
    walks 0.6-1 dB worse over steps 11-100 (it feeds the camera head, which learned from the network's)."""
    config = model.config
    rgb, disp = sample(model, cond_BHWC, action_B, key, config.sample_steps, temperature)
    if palette_BHNC is not None:
        rgb = mem.nearest_colour(rgb, palette_BHNC, config.palette_prior, config.palette_reach)
    if config.show_memory:
        rgb = jnp.where(fine_BHW[..., None], cond_BHWC[..., 0:3], rgb)
    return rgb, disp


def sample(model: WorldModel, cond_BHWC, action_B, key, steps: int, temperature: float = 1.0):
    """Few-step flow-matching sampler (deterministic given the key). Returns rgb (signed) and disparity."""
    b, h, w, _ = cond_BHWC.shape
    noise = temperature * jax.random.normal(key, (b, h, w, 3))
    x, rgb, disp = noise, noise, None
    for i in range(steps):
        t, t_next = i / steps, (i + 1) / steps
        rgb, disp = model.denoise(x, jnp.full((b,), t), cond_BHWC, action_B)
        eps = (x - t * rgb) / (1.0 - t)
        x = (1.0 - t_next) * eps + t_next * rgb
    return jnp.clip(rgb, -1.0, 1.0), jnp.maximum(disp, 0.0)


# --- rollout state ---------------------------------------------------------------------------------

@struct.dataclass
class WorldState:
    """Everything a dream carries from one step to the next (a pytree: jit, vmap and scan apply)."""

    memory: mem.Memory
    last_rgb: jax.Array  # (B,H,W,3) signed
    prev_rgb: jax.Array  # (B,H,W,3) signed
    last_disp: jax.Array  # (B,H,W)
    pose: jax.Array  # (B,4,4) camera-to-world
    intrinsics: jax.Array  # (3,3)
    palette: jax.Array  # (B,H,P,4) colours and log shares a dream paints with per row (`start_palette`; P = 0: off)


def check_state(config: ModelConfig, state) -> None:
    """A clear error for a state that another model config made (other resolution, context, memory or palette)."""
    if not isinstance(state, WorldState):
        raise WorldgenError(f"expected a WorldState from Generator.init, got {type(state).__name__}")
    n = config.resolution ** 2
    want = {"frame": (config.resolution,) * 2 + (3,), "memory points": config.cache_frames * n,
            "pinned points": config.context * n,
            "palette colours": mem.PALETTE_SIZE if config.geometry and config.palette_rows else 0}
    got = {"frame": tuple(state.last_rgb.shape[1:]), "memory points": state.memory.capacity,
           "pinned points": state.memory.pinned, "palette colours": state.palette.shape[2]}
    bad = [f"{k}: state {got[k]}, model {want[k]}" for k in want if got[k] != want[k]]
    if bad:
        raise WorldgenError("this dream state was made by a model of another config (" + "; ".join(bad) + ")")


def quantise(rgb_signed):
    """Round signed RGB to the 256 levels a frame is shown in, as every frame fed back is (as in DIAMOND)."""
    return jnp.round((jnp.clip(rgb_signed, -1.0, 1.0) + 1.0) * 127.5) / 127.5 - 1.0


def start_palettes(config: ModelConfig, frames_BKHWC):
    """The palette a dream from these K real frames (uint8) paints with (`memory.start_palette`): (B, H, P, 4),
    P = 0 without `config.palette_rows`."""
    b, _, h = frames_BKHWC.shape[:3]
    if not (config.geometry and config.palette_rows):
        return jnp.zeros((b, h, 0, 4))
    return mem.start_palette(frames_BKHWC[:, -config.context:], config.palette_rows)


def init_state(config: ModelConfig, frames_BKHWC, depth_BKHW, poses_BK44, intrinsics_33,
               palette_BHPC=None) -> WorldState:
    """Rollout state from K real frames (uint8) with depth and poses (zeros when geometry is off).
    `palette_BHPC`: the frames' `start_palettes`, when they are already known."""
    b, k, h, w, _ = frames_BKHWC.shape
    rgb = to_signed(frames_BKHWC)
    intrinsics = jnp.asarray(intrinsics_33, jnp.float32)
    memory = mem.empty(b, config.context * h * w, (config.cache_frames - config.context) * h * w, config.context)
    if config.geometry:
        for i in range(k):  # the last K frames, when more are given, fill the K pinned slots
            memory = mem.pin(memory, i % config.context, rgb[:, i], depth_BKHW[:, i].astype(jnp.float32),
                             poses_BK44[:, i].astype(jnp.float32), intrinsics)
    palette = start_palettes(config, frames_BKHWC) if palette_BHPC is None else palette_BHPC
    return WorldState(memory=memory, last_rgb=rgb[:, -1], prev_rgb=rgb[:, -2] if k > 1 else rgb[:, -1],
                      last_disp=depth_to_disparity(depth_BKHW[:, -1].astype(jnp.float32)),
                      pose=poses_BK44[:, -1].astype(jnp.float32), intrinsics=intrinsics, palette=palette)


def palette_of(state: WorldState):
    """The colours the dream of `state` paints with (`ModelConfig.palette_rows`), or None."""
    return state.palette if state.palette.shape[2] else None


def draw(config: ModelConfig, state: WorldState, pose_B44):
    """The memory seen from `pose_B44` (`memory.render`): rgb, disparity, coverage (B,H,W), fine and real (B,H,W)
    bool; all empty without geometry."""
    b, h, w, _ = state.last_rgb.shape
    if not config.geometry:
        zeros = jnp.zeros((b, h, w))
        return jnp.zeros((b, h, w, 3)), zeros, zeros, zeros > 0, zeros > 0
    rgb, depth, mask, fine, real = mem.render(state.memory, pose_B44, state.intrinsics, config.resolution,
                                              config.real_surfaces, config.edge_share, config.pyramid_levels)
    return rgb, depth_to_disparity(depth), mask, fine, real


def recall(config: ModelConfig, state: WorldState, pose_B44):
    """Conditioning for the frame at `pose_B44` from memory and the last frames, and what memory knows
    there at full resolution (fine_BHW, the pixels the next frame need not write)."""
    rgb, disp, mask, fine, real = draw(config, state, pose_B44)
    return conditioning(config, rgb, disp, mask, state.last_rgb, state.prev_rgb, state.last_disp, real), fine


# what memory knew of each pixel of a frame (`step`'s "source"): at full resolution from a real start frame or
# from dreamed content written before, only from magnified points (the network repaints it), or nothing
SOURCES = ("real", "dreamed", "magnified", "unknown")


def pixel_source(mask_BHW, fine_BHW, real_BHW):
    """Each pixel's index into SOURCES (uint8, B,H,W)."""
    return jnp.where(fine_BHW, jnp.where(real_BHW, 0, 1), jnp.where(mask_BHW > 0.5, 2, 3)).astype(jnp.uint8)


def advance(config: ModelConfig, state: WorldState, rgb_BHWC, disp_BHW, pose_B44, fine_BHW) -> WorldState:
    """The state after showing a frame: it becomes the last frame, and what memory did not know is written.
    With `config.ground_within`, its disparity first takes the ground for a sky under the horizon
    (`sky.ground_not_sky`), and ground far lower than the eye's for that ground (`sky.ground_floor`); with
    `config.sky_above`, a painted sky high over the horizon takes the real frames' sky colour (`sky.sky_coloured`)."""
    if config.ground_within:
        disp_BHW = sky.ground_floor(disp_BHW, pose_B44, state.intrinsics, config.ground_within)
        disp_BHW = sky.ground_not_sky(disp_BHW, pose_B44, state.intrinsics, config.ground_within)
    if config.sky_above:
        rgb_BHWC = sky.sky_coloured(rgb_BHWC, disp_BHW, ~fine_BHW, state.memory, pose_B44, state.intrinsics,
                                    config.sky_above)
    rgb = quantise(rgb_BHWC)
    new = state.replace(last_rgb=rgb, prev_rgb=state.last_rgb, last_disp=disp_BHW, pose=pose_B44)
    if config.geometry:
        new = new.replace(memory=mem.write(state.memory, rgb, disparity_to_depth(disp_BHW), pose_B44,
                                           state.intrinsics, ~fine_BHW, config.transient_near))
    return new


def step(model: WorldModel, state: WorldState, action_B, key, temperature=None, pose_B44=None, given_B=None):
    """One generated step for every batch element. Returns (new state, outputs: rgb, depth, pose, coverage and
    source, what memory knew of each pixel as an index into SOURCES). `temperature` (may be traced) overrides
    the config's sampling temperature. `pose_B44`, the camera of this frame where something else knows it (the
    engine the player walks in: the viewer's "follow the player"), replaces the pose of the camera head and its
    rules in the batch elements `given_B` (bool, may be traced; None: all), so one compiled step serves both;
    only the frame is dreamed there (`Generator.step` checks the poses)."""
    config = model.config
    temperature = config.sample_temperature if temperature is None else temperature
    pose = state.pose
    if config.geometry:
        pose = mem.settle(state.memory, jax.vmap(apply_delta)(pose, camera_motion(model, state, action_B)))
        if config.real_ground:
            pose = mem.stand(state.memory, pose)
    if pose_B44 is not None:
        given = jnp.ones(pose.shape[:1], bool) if given_B is None else given_B
        pose = jnp.where(given[:, None, None], pose_B44.astype(pose.dtype), pose)
    m_rgb, m_disp, mask, fine, real = draw(config, state, pose)
    cond = conditioning(config, m_rgb, m_disp, mask, state.last_rgb, state.prev_rgb, state.last_disp, real)
    rgb, disp = complete(model, cond, fine, action_B, key, temperature, palette_of(state))
    new = advance(config, state, rgb, disp, pose, fine)
    return new, {"rgb": to_uint8(new.last_rgb), "depth": disparity_to_depth(new.last_disp), "pose": pose,
                 "coverage": mask.mean((1, 2)), "source": pixel_source(mask, fine, real)}


def rollout(model: WorldModel, state: WorldState, actions_BT, key, poses_BT44=None, given_B=None):
    """Generate len(actions) steps with lax.scan: frames_BTHWC uint8, depth_BTHW, poses_BT44. `poses_BT44`:
    each step's camera in the batch elements `given_B`, as `step`'s `pose_B44` (None: the camera head's)."""
    keys = jax.random.split(key, actions_BT.shape[1])
    poses = None if poses_BT44 is None else jnp.moveaxis(poses_BT44, 1, 0)

    def body(carry, inputs):
        action, k, pose = inputs
        carry, out = step(model, carry, action, k, pose_B44=pose, given_B=given_B)
        return carry, out

    state, outs = jax.lax.scan(body, state, (actions_BT.T, keys, poses))
    return state, {k: jnp.moveaxis(v, 0, 1) for k, v in outs.items()}

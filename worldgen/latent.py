"""A JEPA-style latent world model: it predicts the *representation* of the next frame, not its pixels.

An encoder maps a frame to a latent vector; an action-conditioned predictor maps (latent, action) to the
next latent. Trained by `training.latent` (prediction in latent space, with variance / covariance terms and
an inverse-dynamics head so that it cannot collapse), it plans by searching for actions whose predicted
latent reaches a goal image's (`worldgen.planner`).

Dimension keys: B batch, T time, D latent, H, W, C colour channels, A actions.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from worldgen.actions import MAX_ACTIONS, NUM_ACTIONS
from worldgen.errors import WorldgenError
from worldgen.frozen import from_dict


@dataclass(frozen=True)
class LatentConfig:
    """resolution: square frames it encodes. latent: D. widths: channels of the stride-2 conv stages.
    hidden: width of the predictor and inverse-dynamics MLPs."""

    resolution: int = 64
    num_actions: int = NUM_ACTIONS
    latent: int = 256
    widths: tuple[int, ...] = (32, 64, 128, 128)
    hidden: int = 512

    def __post_init__(self):
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        if not self.widths or any(w < 1 for w in self.widths):
            raise WorldgenError(f"LatentConfig.widths = {self.widths}: expected positive channel counts")
        if not 16 <= self.resolution <= 256 or self.resolution % 2 ** len(self.widths):
            raise WorldgenError(f"LatentConfig.resolution = {self.resolution}: expected 16..256, divisible by "
                                f"{2 ** len(self.widths)} (one halving per conv stage)")
        if not 2 <= self.num_actions <= MAX_ACTIONS:
            raise WorldgenError(f"LatentConfig.num_actions = {self.num_actions}: expected 2..{MAX_ACTIONS}")
        for name in ("latent", "hidden"):
            if not 2 <= getattr(self, name) <= 4096:
                raise WorldgenError(f"LatentConfig.{name} = {getattr(self, name)}: expected 2..4096")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "LatentConfig":
        return from_dict(cls, values, WorldgenError)


LATENT_PRESETS = {"tiny": LatentConfig(resolution=32, latent=32, widths=(8, 16), hidden=64),
                  "small": LatentConfig()}


class LatentModel(nnx.Module):
    def __init__(self, config: LatentConfig, *, rngs: nnx.Rngs):
        self.config = config
        chans = (3,) + config.widths
        self.convs = nnx.List([nnx.Conv(a, b, (4, 4), strides=(2, 2), rngs=rngs) for a, b in zip(chans, chans[1:])])
        side = config.resolution // 2 ** len(config.widths)
        self.to_latent = nnx.Linear(config.widths[-1] * side * side, config.latent, rngs=rngs)
        self.action_embed = nnx.Embed(config.num_actions, 64, rngs=rngs)
        self.pred_in = nnx.Linear(config.latent + 64, config.hidden, rngs=rngs)
        self.pred_hidden = nnx.Linear(config.hidden, config.hidden, rngs=rngs)
        self.pred_out = nnx.Linear(config.hidden, config.latent, rngs=rngs)
        self.inv_in = nnx.Linear(2 * config.latent, config.hidden, rngs=rngs)
        self.inv_out = nnx.Linear(config.hidden, config.num_actions, rngs=rngs)

    def encode(self, frames_BHWC):
        """Latent z_BD of uint8 frames."""
        x = frames_BHWC.astype(jnp.float32) / 127.5 - 1.0
        for conv in self.convs:
            x = nnx.silu(conv(x))
        return self.to_latent(x.reshape(x.shape[0], -1))

    def predict(self, z_BD, action_B):
        """The latent after taking `action_B` (a residual step)."""
        h = nnx.silu(self.pred_in(jnp.concatenate([z_BD, self.action_embed(action_B)], -1)))
        return z_BD + self.pred_out(nnx.silu(self.pred_hidden(h)))

    def rollout(self, z_BD, actions_BT):
        """Predicted latents z_BTD after each of the actions, in order (one lax.scan)."""
        def body(z, a):
            z = self.predict(z, a)
            return z, z
        return jnp.moveaxis(jax.lax.scan(body, z_BD, actions_BT.T)[1], 0, 1)

    def inverse(self, z_BD, z_next_BD):
        """Logits over the action that led from z to z_next (the inverse-dynamics head, used in training)."""
        return self.inv_out(nnx.silu(self.inv_in(jnp.concatenate([z_BD, z_next_BD], -1))))


def check_frames(frames, config: LatentConfig, what: str = "frame") -> np.ndarray:
    """uint8 (..., H, W, 3) frames at the model's resolution, or a clear error."""
    a = np.asarray(frames)
    r = config.resolution
    if a.dtype != np.uint8 or a.shape[-3:] != (r, r, 3):
        raise WorldgenError(f"{what}: expected uint8 {r}x{r}x3 images for this latent model, got "
                            f"{a.dtype} {a.shape}")
    return a


def bundled_latent() -> Path:
    """Where the package's latent model lives (beside the bundled world model; it may be absent)."""
    from worldgen.model.store import BUNDLED
    return BUNDLED.parent / "latent_model"


def load_latent(directory: str | Path) -> LatentModel:
    """The latent model exported by `worldgen latent train` (its run folder's model/, or that folder), or
    "bundled"."""
    from worldgen.model.store import load_module
    directory = bundled_latent() if str(directory) == "bundled" else Path(directory)
    if (directory / "model").is_dir():
        directory = directory / "model"
    return load_module(directory, "latent model",
                       lambda saved: LatentModel(LatentConfig.from_dict(saved), rngs=nnx.Rngs(0)))

"""A small conditioned U-Net in Flax NNX: FiLM from a conditioning vector in every residual block.

Dimension keys: B batch, H height, W width, C channels, D conditioning width.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx


def timestep_embedding(t_B: jax.Array, dim: int) -> jax.Array:
    """Sinusoidal embedding of a flow time in [0, 1]."""
    half = dim // 2
    freqs = jnp.exp(-math.log(1000.0) * jnp.arange(half) / half)
    angles = t_B[:, None] * 1000.0 * freqs[None, :]
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


class ResBlock(nnx.Module):
    def __init__(self, din: int, dout: int, cond_dim: int, *, rngs: nnx.Rngs):
        self.norm1 = nnx.GroupNorm(din, num_groups=min(4, din), rngs=rngs)
        self.conv1 = nnx.Conv(din, dout, (3, 3), rngs=rngs)
        self.film = nnx.Linear(cond_dim, 2 * dout, kernel_init=nnx.initializers.zeros, rngs=rngs)
        self.norm2 = nnx.GroupNorm(dout, num_groups=min(4, dout), rngs=rngs)
        self.conv2 = nnx.Conv(dout, dout, (3, 3), rngs=rngs)
        self.skip = nnx.Conv(din, dout, (1, 1), rngs=rngs) if din != dout else None

    def __call__(self, x_BHWC: jax.Array, cond_BD: jax.Array) -> jax.Array:
        h = self.conv1(nnx.silu(self.norm1(x_BHWC)))
        scale, shift = jnp.split(self.film(cond_BD), 2, axis=-1)
        h = h * (1 + scale[:, None, None, :]) + shift[:, None, None, :]
        h = self.conv2(nnx.silu(self.norm2(h)))
        return h + (self.skip(x_BHWC) if self.skip is not None else x_BHWC)


class UNet(nnx.Module):
    """in_channels -> out_channels at the same resolution, with len(channels)-1 halvings."""

    def __init__(self, in_channels: int, out_channels: int, channels: tuple[int, ...], cond_dim: int,
                 *, rngs: nnx.Rngs):
        self.stem = nnx.Conv(in_channels, channels[0], (3, 3), rngs=rngs)
        self.down_blocks = nnx.List([ResBlock(c, c, cond_dim, rngs=rngs) for c in channels[:-1]])
        self.downsamples = nnx.List([nnx.Conv(a, b, (3, 3), strides=(2, 2), rngs=rngs)
                                     for a, b in zip(channels[:-1], channels[1:])])
        self.middle = ResBlock(channels[-1], channels[-1], cond_dim, rngs=rngs)
        self.up_convs = nnx.List([nnx.Conv(b, a, (3, 3), rngs=rngs) for a, b in zip(channels[:-1], channels[1:])])
        self.up_blocks = nnx.List([ResBlock(2 * c, c, cond_dim, rngs=rngs) for c in channels[:-1]])
        self.head_norm = nnx.GroupNorm(channels[0], num_groups=min(4, channels[0]), rngs=rngs)
        self.head = nnx.Conv(channels[0], out_channels, (3, 3), kernel_init=nnx.initializers.zeros, rngs=rngs)

    def __call__(self, x_BHWC: jax.Array, cond_BD: jax.Array) -> jax.Array:
        h = self.stem(x_BHWC)
        skips = []
        for block, down in zip(self.down_blocks, self.downsamples):
            h = block(h, cond_BD)
            skips.append(h)
            h = down(h)
        h = self.middle(h, cond_BD)
        for i in reversed(range(len(self.up_blocks))):
            b, hh, ww, c = h.shape
            h = self.up_convs[i](jax.image.resize(h, (b, hh * 2, ww * 2, c), "nearest"))
            h = self.up_blocks[i](jnp.concatenate([h, skips[i]], axis=-1), cond_BD)
        return self.head(nnx.silu(self.head_norm(h)))


def deepen(old: UNet, new: UNet) -> UNet:
    """`new` (the widths of `old` plus one more level) made to compute exactly what `old` computes: every part of
    `old` is copied in, `old`'s middle block becomes the new level's down block, and the new up block passes its
    skip input straight through (a 1x1 identity on the skip half, zero residual) until it is trained. The new
    level's downsample, middle and up convolution keep their initial weights: their path is added through that
    zero residual, so training opens it from the first step."""
    levels = len(old.down_blocks)
    for name in ("stem", "head_norm", "head"):
        setattr(new, name, nnx.clone(getattr(old, name)))
    for i in range(levels):
        for name in ("down_blocks", "downsamples", "up_convs", "up_blocks"):
            getattr(new, name)[i] = nnx.clone(getattr(old, name)[i])
    new.down_blocks[levels] = nnx.clone(old.middle)
    up = new.up_blocks[levels]
    c = up.conv2.kernel.shape[-1]
    up.conv2.kernel[...] = jnp.zeros_like(up.conv2.kernel[...])
    up.conv2.bias[...] = jnp.zeros_like(up.conv2.bias[...])
    up.skip.kernel[...] = jnp.concatenate([jnp.zeros((c, c)), jnp.eye(c)])[None, None].astype(up.skip.kernel.dtype)
    up.skip.bias[...] = jnp.zeros_like(up.skip.bias[...])
    return new

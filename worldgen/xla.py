"""`jit`: `jax.jit` with the XLA options worldgen compiles its functions with (the one place for them).

On a CPU, recent XLA hands reductions, convolutions and matrix products to YNNPACK. On our shapes (sums
over a few pyramid levels or colour channels, norms over 2-3 coordinates, 64x64 images at batch 1) its
reductions run several times slower than XLA's own loops (a sum of 3x64x64x3 values took 1.5 ms), and its
convolutions were no faster. Only matrix products stay with YNNPACK (`CPU_OPTIONS`). Sums are then taken in
another order, so a value may differ by rounding (the bundled model's 24 long walks move by at most 0.02 dB);
its step takes about a third less time, and its train step about 30% less (docs/model.md, session 28).
An XLA that does not know the option (an older jax) compiles as before; other backends get no options.

Every hot `jax.jit` of the project goes through `jit`. The options are decided on the first call, which
sets up JAX's backend: call it inside functions, after `jax.distributed.initialize()`.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_DOT"}


@functools.cache
def compiler_options() -> dict:
    """CPU_OPTIONS on a CPU backend whose XLA knows them, else {}."""
    if jax.default_backend() != "cpu":
        return {}
    try:
        jax.jit(lambda x: x + 1, compiler_options=CPU_OPTIONS).lower(jnp.zeros(2)).compile()
    except (TypeError, ValueError, RuntimeError):  # no such jit argument, or an option this XLA does not know
        return {}
    return dict(CPU_OPTIONS)


def jit(fun, **kwargs):
    """`jax.jit(fun, **kwargs)` with `compiler_options()`; also a decorator (`@jit`)."""
    options = compiler_options()
    return jax.jit(fun, **kwargs, **({"compiler_options": options} if options else {}))

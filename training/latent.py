"""Training the latent (JEPA-style) world model, and a probe of what its latent knows.

Dimension keys: B batch, T window length, D latent, N probe pairs, A actions.

Objective (`latent_loss`), on windows of 1 + horizon frames from recorded episodes:
- prediction: the predictor, rolled out from the first frame's latent with the true actions, matches the
  encoder's latents of the later frames (multi-step, as the planner uses it);
- variance and covariance (VICReg): every latent dimension keeps a standard deviation of at least 1 over
  the batch and dimensions are decorrelated, so the encoder cannot collapse to a constant;
- inverse dynamics: a head names the action between consecutive latents, so what actions change (where the
  camera is and looks) must be in the latent.
The weights are a `LatentLoss`; `worldgen latent train --idm-weight 0` switches the last term off.
With `LatentLoss.ema` > 0 the prediction targets come from an EMA copy of the encoder instead of the encoder
itself (BYOL / I-JEPA style; `--ema 0.99 --var-weight 0 --cov-weight 0` trains with no VICReg terms). The copy
lives beside the model only while training (`WithTarget`); the exported model is the online one.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from training.fit import FitConfig, fit
from worldgen.dataset import EpisodeDataset
from worldgen.errors import DataError, WorldgenError
from worldgen.files import write_atomic
from worldgen.latent import LATENT_PRESETS, LatentConfig, LatentModel
from worldgen.model.geometry import pose_delta
from worldgen.model.store import export_model


@dataclass(frozen=True)
class LatentLoss:
    horizon: int = 4
    pred_weight: float = 1.0
    var_weight: float = 1.0
    cov_weight: float = 0.04
    idm_weight: float = 1.0
    ema: float = 0.0

    def __post_init__(self):
        if not 0.0 <= self.ema < 1.0:
            raise WorldgenError(f"LatentLoss.ema = {self.ema}: expected 0 (no target encoder) or a decay in (0, 1)")
        if not 1 <= self.horizon <= 64:
            raise WorldgenError(f"LatentLoss.horizon = {self.horizon}: expected 1..64")
        for name in ("pred_weight", "var_weight", "cov_weight", "idm_weight"):
            if not 0.0 <= getattr(self, name) <= 100.0:
                raise WorldgenError(f"LatentLoss.{name} = {getattr(self, name)}: expected 0..100")


def variance_covariance(z_ND):
    """VICReg terms: mean hinge of per-dimension std below 1, and the mean squared off-diagonal covariance."""
    n, d = z_ND.shape
    zc = z_ND - z_ND.mean(0)
    std = jnp.sqrt(zc.var(0) + 1e-4)
    cov = zc.T @ zc / (n - 1)
    off = cov - jnp.diag(jnp.diag(cov))
    return jnp.mean(jax.nn.relu(1.0 - std)), jnp.sum(off ** 2) / d, std


class EmaTarget(nnx.Variable):
    """A weight of the target encoder: an exponential moving average of the model's, never trained."""


@dataclass(frozen=True)
class TargetConfig:
    """The config that checkpoints of a `WithTarget` run record: the model's, marked, so that resuming such a
    run without its target (or the other way round) is named as a config mismatch."""
    model: LatentConfig

    def to_dict(self) -> dict:
        return {**self.model.to_dict(), "ema_target": True}


class WithTarget(nnx.Module):
    """The model being trained and an EMA copy of it whose encoder gives the prediction targets."""

    def __init__(self, model: LatentModel):
        self.model, self.config = model, TargetConfig(model.config)
        self.target = nnx.clone(model)
        for _, node in nnx.iter_graph(self.target):
            if isinstance(node, nnx.Module):
                for name, value in list(vars(node).items()):
                    if isinstance(value, nnx.Param):
                        setattr(node, name, EmaTarget(value[...]))

    def follow(self, decay: float):
        """Move the target's weights toward the model's: target = decay * target + (1 - decay) * model."""
        ema = nnx.state(self.target, EmaTarget)
        new = jax.tree.map(lambda e, p: decay * e + (1 - decay) * jax.lax.stop_gradient(p), nnx.to_pure_dict(ema),
                           nnx.to_pure_dict(nnx.state(self.model, nnx.Param)))
        nnx.replace_by_pure_dict(ema, new)
        nnx.update(self.target, ema)


def latent_loss(model: LatentModel, batch, key, loss: LatentLoss, target: LatentModel | None = None):
    """The training objective; the prediction targets are `target`'s latents (an EMA encoder) if given,
    else the model's own."""
    del key  # deterministic
    frames, actions = batch["frames_BTHWC"], batch["actions_BT"]
    b, t = actions.shape
    flat = frames.reshape((b * t,) + frames.shape[2:])
    z = model.encode(flat).reshape(b, t, -1)
    goal = z if target is None else jax.lax.stop_gradient(target.encode(flat).reshape(b, t, -1))
    pred = model.rollout(z[:, 0], actions[:, 1:])
    pred_mse = jnp.mean((pred - goal[:, 1:]) ** 2)
    still_mse = jnp.mean((goal[:, :1] - goal[:, 1:]) ** 2)  # the error of predicting "nothing changes"
    var, cov, std = variance_covariance(z.reshape(b * t, -1))
    logits = model.inverse(z[:, :-1].reshape(b * (t - 1), -1), z[:, 1:].reshape(b * (t - 1), -1))
    target = actions[:, 1:].reshape(-1)
    idm = jnp.mean(-jnp.take_along_axis(jax.nn.log_softmax(logits), target[:, None], 1))
    total = (loss.pred_weight * pred_mse + loss.var_weight * var + loss.cov_weight * cov + loss.idm_weight * idm)
    metrics = {"loss": total, "pred_mse": pred_mse, "pred_vs_still": pred_mse / (still_mse + 1e-8), "var": var,
               "cov": cov, "z_std": jnp.mean(std), "idm_ce": idm, "idm_acc": jnp.mean(logits.argmax(-1) == target)}
    return total, metrics


def train_latent(data: Path, workdir: Path, preset_name: str = "small", fit_cfg: FitConfig = FitConfig(),
                 loss: LatentLoss = LatentLoss(), resume: bool = False, progress: bool = True,
                 stop_after: int | None = None, latent: int | None = None) -> tuple[LatentModel, dict]:
    """Train a latent model (preset `preset_name`, with `latent` dimensions if given) on the training worlds
    of `data` through the shared `fit` loop; export it to workdir/model (a folder that `load_latent` reads)."""
    if preset_name not in LATENT_PRESETS:
        raise WorldgenError(f"unknown latent preset {preset_name!r}: expected one of {', '.join(LATENT_PRESETS)}")
    train = EpisodeDataset(data, "train")
    config = LATENT_PRESETS[preset_name]
    if latent is not None:
        config = dataclasses.replace(config, latent=latent)
    if train.resolution != config.resolution or train.num_actions != config.num_actions:
        raise DataError(f"{data} is {train.resolution}x{train.resolution} with {train.num_actions} actions but the "
                        f"'{preset_name}' latent model takes {config.resolution}x{config.resolution} and "
                        f"{config.num_actions} actions")
    if train.steps < loss.horizon + 1:
        raise DataError(f"{data} episodes have {train.steps} steps; --horizon {loss.horizon} needs "
                        f"{loss.horizon + 1}")
    model = LatentModel(config, rngs=nnx.Rngs(fit_cfg.seed))
    trained, loss_fn = model, (lambda m, b, k: latent_loss(m, b, k, loss))
    if loss.ema:
        trained = WithTarget(model)

        def loss_fn(pair, b, k):
            out = latent_loss(pair.model, b, k, loss, pair.target)
            pair.follow(loss.ema)
            return out
    t0 = time.time()
    last = fit(trained, loss_fn,
               lambda step, rows: {k: v for k, v in train.windows(fit_cfg.batch_size, loss.horizon + 1, fit_cfg.seed,
                                                                   step, rows).items()
                                   if k in ("frames_BTHWC", "actions_BT")},
               fit_cfg, workdir, meta={"data": str(data), "preset": preset_name, "loss": asdict(loss)},
               resume=resume, progress=progress, stop_after=stop_after)
    info = {"preset": preset_name, "data": str(data), "loss": asdict(loss), "steps": fit_cfg.steps,
            "stopped_after": stop_after, "batch_size": fit_cfg.batch_size, "final_metrics": last,
            "wall_seconds_this_run": round(time.time() - t0, 1)}
    export_model(model, Path(workdir) / "model", extra={"latent": info})
    if jax.process_index() == 0:
        write_atomic(Path(workdir) / "train_summary.json", lambda tmp: tmp.write_text(json.dumps(info, indent=1)))
    return model, info


def _pairs(data: EpisodeDataset, n: int, max_gap: int, seed: int):
    """n frame pairs (a, b) up to max_gap steps apart, and the relative pose of b seen from a:
    (forward m, right m, yaw rad)."""
    rng = np.random.default_rng(seed)
    ep = rng.integers(0, len(data), n)
    a = rng.integers(0, data.steps - 1, n)
    b = np.minimum(a + rng.integers(1, max_gap + 1, n), data.steps - 1)
    frames, poses = data.arrays["frames"], data.arrays["poses"]
    delta = np.asarray(jax.vmap(pose_delta)(jnp.asarray(poses[ep, a]), jnp.asarray(poses[ep, b])))
    return frames[ep, a], frames[ep, b], delta[:, [0, 1, 3]]


def probe(model: LatentModel, data: Path, pairs: int = 4000, max_gap: int = 8, seed: int = 0) -> dict:
    """What the latent knows: a linear read-out (ridge regression, fitted on training worlds, scored on
    held-out worlds) of the relative pose between two frames from their latents; and whether the latent
    has collapsed (per-dimension standard deviation over held-out frames)."""
    train, held = EpisodeDataset(data, "train"), EpisodeDataset(data, "heldout")
    if not train.has_geometry:
        raise DataError(f"{data} has no camera poses: the probe reads out relative poses")
    encode = nnx.jit(lambda m, f: m.encode(f))

    def features(fa, fb):
        za = np.concatenate([np.asarray(encode(model, fa[i:i + 256])) for i in range(0, len(fa), 256)])
        zb = np.concatenate([np.asarray(encode(model, fb[i:i + 256])) for i in range(0, len(fb), 256)])
        return np.concatenate([za, zb - za, np.ones((len(za), 1))], 1), za

    xa, xb, y_train = _pairs(train, pairs, max_gap, seed)
    x_train, _ = features(xa, xb)
    xa, xb, y_test = _pairs(held, max(pairs // 4, 64), max_gap, seed + 1)
    x_test, z_test = features(xa, xb)
    w = np.linalg.solve(x_train.T @ x_train + 1e-2 * np.eye(x_train.shape[1]), x_train.T @ y_train)
    err, base = x_test @ w - y_test, y_train.mean(0) - y_test
    std = z_test.std(0)
    return {"move_rmse_m": float(np.sqrt(np.mean(np.sum(err[:, :2] ** 2, 1)))),
            "move_rmse_m_mean_guess": float(np.sqrt(np.mean(np.sum(base[:, :2] ** 2, 1)))),
            "yaw_rmse_deg": float(np.degrees(np.sqrt(np.mean(err[:, 2] ** 2)))),
            "yaw_rmse_deg_mean_guess": float(np.degrees(np.sqrt(np.mean(base[:, 2] ** 2)))),
            "latent_std_min": float(std.min()), "latent_std_mean": float(std.mean()),
            "dims_below_0.01": int((std < 0.01).sum()), "latent": int(z_test.shape[1]),
            "pairs_fit": len(x_train), "pairs_scored": len(x_test), "max_gap": max_gap}

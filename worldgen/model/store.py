"""Saved models: a folder with config.json and an orbax `params/` tree. The bundled one lives in assets/,
installed with the package as `worldgen_assets` (package data, found through importlib.resources).

Loading never unpickles: orbax restores arrays into the structure built from config.json, and a model
folder whose config or arrays do not fit gets an error that names the mismatch.
"""
from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import jax
import orbax.checkpoint as ocp
from flax import nnx
from jax.experimental.multihost_utils import sync_global_devices

from worldgen.errors import WorldgenError, brief
from worldgen.model.config import ModelConfig
from worldgen.model.world_model import WorldModel

try:
    BUNDLED = Path(str(resources.files("worldgen_assets"))) / "world_model"  # assets/ in a checkout
except ModuleNotFoundError:  # a checkout on sys.path that was never installed
    BUNDLED = Path(__file__).resolve().parents[2] / "assets" / "world_model"


def resolve_model(name: str | Path) -> Path:
    """'bundled' or a folder path -> the model folder, with a clear error when it is missing."""
    path = BUNDLED if str(name) == "bundled" else Path(name)
    if not path.is_dir():
        raise WorldgenError(f"model {str(name)!r} not found (looked for the folder {path})")
    return path


def config_mismatch(saved: dict, config: ModelConfig) -> list[str]:
    want = config.to_dict()
    norm = lambda v: list(v) if isinstance(v, (list, tuple)) else v
    return [f"{key}: saved {norm(saved.get(key))}, expected {norm(want.get(key))}"
            for key in sorted(set(saved) | set(want)) if norm(saved.get(key)) != norm(want.get(key))]


def check_config(saved: dict, config: ModelConfig, where: Path) -> None:
    diffs = config_mismatch(saved, config)
    if diffs:
        raise WorldgenError(f"{where} does not fit this model ({'; '.join(diffs)})")


def export_model(model, directory: Path, extra: dict | None = None) -> Path:
    """Write params + config.json; an older export at the same place is replaced only once the new one is whole.
    In a multi-process run every process calls this (orbax writes the arrays together) and process 0 alone
    touches the folders."""
    directory = Path(directory).absolute()
    tmp = directory.with_name(directory.name + ".tmp")
    primary = jax.process_index() == 0
    if primary:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        (tmp / "config.json").write_text(json.dumps({"model_config": model.config.to_dict(), **(extra or {})},
                                                    indent=1))
    sync_global_devices(f"export {directory} begins")
    with ocp.StandardCheckpointer() as ckpt:
        ckpt.save(tmp / "params", nnx.state(model, nnx.Param))
    sync_global_devices(f"export {directory} written")
    if primary:
        if directory.exists():
            old = directory.with_name(directory.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            directory.rename(old)
            tmp.rename(directory)
            shutil.rmtree(old)
        else:
            tmp.rename(directory)
    sync_global_devices(f"export {directory} done")
    return directory


KINDS = {"agent": "PPO policy", "latent": "latent model"}  # config.json keys marking folders of other kinds


def _read_info(directory: Path, kind: str) -> dict:
    """config.json of a model folder of `kind` ("world model", or a name in KINDS), checked."""
    cfg_path = Path(directory) / "config.json"
    if not cfg_path.is_file() or not (Path(directory) / "params").is_dir():
        raise WorldgenError(f"{directory} is not a worldgen model folder (expected config.json and params/)")
    try:
        info = json.loads(cfg_path.read_text())
        info["model_config"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise WorldgenError(f"{cfg_path}: unreadable model config ({type(e).__name__}: {e})") from None
    found = next((name for key, name in KINDS.items() if key in info), "world model")
    if found != kind:
        raise WorldgenError(f"{directory} holds a {found}, not a {kind}")
    return info


def read_config(directory: Path) -> tuple[ModelConfig, dict]:
    info = _read_info(directory, "world model")
    try:
        return ModelConfig.from_dict(info["model_config"]), info
    except (KeyError, TypeError) as e:
        raise WorldgenError(f"{Path(directory) / 'config.json'}: unreadable model config ({type(e).__name__}: "
                            f"{e})") from None


def load_module(directory: str | Path, kind: str, build):
    """Rebuild the module saved in a model folder of `kind` ("world model", or a name in KINDS, whose key
    `export_model`'s `extra` carries): `build(saved config dict)` makes it, then orbax restores its
    parameters into it (never unpickling)."""
    directory = Path(directory)
    module = build(_read_info(directory, kind)["model_config"])
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)
    try:
        with ocp.StandardCheckpointer() as ckpt:
            params = ckpt.restore(directory.absolute() / "params", params)
    except Exception as e:  # orbax raises many types for damaged or foreign trees
        raise WorldgenError(f"{directory}/params is damaged or does not fit its config.json ({brief(e)})") from None
    return nnx.merge(graphdef, params, rest)


def load_model(directory: str | Path, expect: ModelConfig | None = None) -> WorldModel:
    """Rebuild a WorldModel from a model folder (or 'bundled'); with `expect`, refuse another config."""
    directory = resolve_model(directory)
    config, info = read_config(directory)
    if expect is not None:
        check_config(info["model_config"], expect, directory)
    return load_module(directory, "world model",
                       lambda _: nnx.eval_shape(lambda: WorldModel(config, rngs=nnx.Rngs(0))))

"""Orbax training checkpoints: model + optimizer state, step and data position in one.

The meta JSON carries the model config; resuming into a model of another config or action count fails
with an error that names every field that differs. A checkpoint is written to a temporary folder and
renamed by orbax, so a kill -9 leaves the previous one intact.
"""
from __future__ import annotations

from pathlib import Path

import orbax.checkpoint as ocp

from worldgen.model.config import ModelConfig
from worldgen.model.store import check_config


def manager(directory: Path, keep: int = 2) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=False)
    return ocp.CheckpointManager(Path(directory).absolute(), options=options)


def save(mngr: ocp.CheckpointManager, step: int, state, meta: dict) -> None:
    mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))
    mngr.wait_until_finished()


def restore_latest(mngr: ocp.CheckpointManager, abstract_state, config: ModelConfig):
    """(state, meta) of the newest checkpoint, or None when there is none."""
    step = mngr.latest_step()
    if step is None:
        return None
    meta = mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    check_config(meta["model_config"], config, Path(mngr.directory) / str(step))
    restored = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)))
    return restored["state"], meta

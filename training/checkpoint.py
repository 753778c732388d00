"""Orbax training checkpoints: model + optimizer state, step and data position in one.

The meta JSON carries the model config; resuming into a model of another config or action count fails
with an error that names every field that differs. A checkpoint is written to a temporary folder and
renamed by orbax, so a kill -9 leaves the previous one intact.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import orbax.checkpoint as ocp

from worldgen.errors import WorldgenError, brief
from worldgen.model.config import ModelConfig
from worldgen.model.store import check_config


def manager(directory: Path, keep: int = 2) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=False)
    return ocp.CheckpointManager(Path(directory).absolute(), options=options)


def save(mngr: ocp.CheckpointManager, step: int, state, meta: dict) -> None:
    mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))
    mngr.wait_until_finished()


def restore_latest(mngr: ocp.CheckpointManager, abstract_state, config: ModelConfig, stage: str | None = None):
    """(state, meta) of the newest intact checkpoint, or None when there is none. A damaged one (a file
    truncated by a full disk or a copy) is named, moved aside to `<step>.damaged` (kept, not deleted) and
    the next older one is tried; a checkpoint of another model config, or with `stage` of another training
    stage (whose optimizer holds other parameters), is an error."""
    steps = sorted(mngr.all_steps(), reverse=True)
    for step in steps:
        where = Path(mngr.directory) / str(step)
        try:
            meta = mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
            model_config = meta["model_config"]
        except Exception as e:  # orbax raises many types for damaged files
            _set_aside(mngr, where, e)
            continue
        check_config(model_config, config, where)
        saved = meta.get("stage", "all")  # checkpoints from before session 26 have no stage: they hold every part
        if stage is not None and saved != stage:
            raise WorldgenError(f"{where} was written by training stage {saved!r} (before session 26 every "
                                f"stage's checkpoint counts as 'all') but this run trains stage {stage!r}: resume "
                                "with the same --stage, or export it (worldgen export-checkpoint) and pass that "
                                "model as --init")
        try:
            restored = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)))
        except Exception as e:
            _set_aside(mngr, where, e)
            continue
        return restored["state"], meta
    if steps:
        raise WorldgenError(f"{mngr.directory}: every checkpoint is damaged (set aside as *.damaged)")
    return None


def _set_aside(mngr: ocp.CheckpointManager, where: Path, error: Exception) -> None:
    aside = where.with_name(where.name + ".damaged")
    print(f"warning: checkpoint {where} is damaged ({brief(error, 160)}); moved to {aside.name}, "
          "trying the one before", file=sys.stderr)
    shutil.rmtree(aside, ignore_errors=True)
    where.rename(aside)
    mngr.reload()

"""Output files: checked before any work starts, written whole or not at all."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from worldgen.errors import WorldgenError


def output_file(path: str | Path) -> Path:
    """`path` as a Path, or a clear error when it cannot be written (a folder, a missing or read-only folder)."""
    path = Path(path)
    if path.is_dir():
        raise WorldgenError(f"cannot write {path}: it is a folder")
    if not path.parent.is_dir():
        raise WorldgenError(f"cannot write {path}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise WorldgenError(f"cannot write {path}: folder {path.parent} is not writable")
    return path


def write_atomic(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call write(tmp) on a temporary file beside `path`, then move it into place: a reader never sees a
    half-written file, and an older file at `path` stays whole if writing fails."""
    path = output_file(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as e:
        raise WorldgenError(f"cannot write {path}: {e.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_video(path: str | Path, frames, fps: int, scale: int = 4) -> Path:
    """Small uint8 frames (H, W, 3), each pixel drawn scale x scale, as an MP4 written whole or not at all."""
    import imageio.v3 as iio
    import numpy as np
    big = np.stack([np.repeat(np.repeat(np.asarray(f), scale, 0), scale, 1) for f in frames])
    return write_atomic(path, lambda tmp: iio.imwrite(tmp, big, extension=".mp4", fps=fps))

"""Export a world's region as GLB (with colours), OBJ or PLY, written atomically."""
from __future__ import annotations

import os
from pathlib import Path

import trimesh

from worldgen.errors import WorldgenError
from worldgen.world import World

FORMATS = ("glb", "obj", "ply")


def export_world(world: World, path: Path, fmt: str | None = None, radius: float | None = None) -> trimesh.Trimesh:
    """Write the region's chunks merged into one coloured mesh. Returns the mesh that was written."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise WorldgenError(f"unknown export format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if not path.parent.is_dir():
        raise WorldgenError(f"cannot write {path}: folder {path.parent} does not exist")
    if path.is_dir():
        raise WorldgenError(f"cannot write {path}: it is a folder")
    meshes = [world.chunk_mesh(*key).to_trimesh() for key in world.region_chunks(radius)]
    if not meshes:
        raise WorldgenError("the export region holds no chunks: increase the radius")
    mesh = trimesh.util.concatenate(meshes)
    data = mesh.export(file_type=fmt)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except OSError as e:
        raise WorldgenError(f"cannot write {path}: {e.strerror}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return mesh

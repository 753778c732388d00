"""Export a world's region as GLB (with colours), OBJ or PLY, written atomically."""
from __future__ import annotations

from pathlib import Path

import trimesh

from worldgen.errors import WorldgenError
from worldgen.files import output_file, write_atomic
from worldgen.world import World

FORMATS = ("glb", "obj", "ply")


def export_world(world: World, path: Path, fmt: str | None = None, radius: float | None = None) -> trimesh.Trimesh:
    """Write the region's chunks merged into one coloured mesh. Returns the mesh that was written."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise WorldgenError(f"unknown export format {fmt!r}: expected one of {', '.join(FORMATS)}")
    output_file(path)
    meshes = [world.chunk_mesh(*key).to_trimesh() for key in world.region_chunks(radius)]
    if not meshes:
        raise WorldgenError("the export region holds no chunks: increase the radius")
    mesh = trimesh.util.concatenate(meshes)
    data = mesh.export(file_type=fmt)
    write_atomic(path, lambda tmp: tmp.write_bytes(data.encode() if isinstance(data, str) else data))
    return mesh

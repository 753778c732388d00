"""worldgen: seeded procedural 3D worlds, a headless renderer and recorded datasets."""
import os

# Headless GL by default; a user may still pick another platform explicitly.
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

from worldgen.actions import ACTION_NAMES, NUM_ACTIONS, Action  # noqa: E402
from worldgen.errors import DataError, SpecError, WorldgenError  # noqa: E402
from worldgen.spec import WorldSpec  # noqa: E402
from worldgen.world import World, generate_world  # noqa: E402

__all__ = ["Action", "ACTION_NAMES", "NUM_ACTIONS", "WorldSpec", "World", "generate_world",
           "WorldgenError", "SpecError", "DataError"]

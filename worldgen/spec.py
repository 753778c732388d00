"""`WorldSpec`: every knob of a procedural world, validated on construction, plus the biome palettes."""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

from worldgen.errors import SpecError
from worldgen.frozen import from_dict

OBJECT_KINDS = ("tree", "rock", "building", "pillar")


@dataclass(frozen=True)
class Palette:
    """Base colours (RGB, 0..1) of one biome."""

    ground_low: tuple[float, float, float]
    ground_high: tuple[float, float, float]
    foliage: tuple[tuple[float, float, float], ...]
    trunk: tuple[float, float, float]
    rock: tuple[float, float, float]
    wall: tuple[tuple[float, float, float], ...]
    roof: tuple[float, float, float]
    pillar: tuple[float, float, float]
    sky: tuple[float, float, float]
    tree_height: float  # typical tree height in metres


BIOMES: dict[str, Palette] = {
    "grass": Palette(
        ground_low=(0.30, 0.55, 0.20), ground_high=(0.50, 0.62, 0.28),
        foliage=((0.13, 0.42, 0.13), (0.22, 0.50, 0.10), (0.40, 0.55, 0.12)),
        trunk=(0.40, 0.26, 0.13), rock=(0.48, 0.47, 0.45),
        wall=((0.85, 0.78, 0.62), (0.75, 0.45, 0.35), (0.90, 0.90, 0.88)),
        roof=(0.55, 0.18, 0.12), pillar=(0.80, 0.80, 0.76), sky=(0.55, 0.75, 0.95), tree_height=5.0),
    "desert": Palette(
        ground_low=(0.86, 0.72, 0.45), ground_high=(0.78, 0.55, 0.32),
        foliage=((0.35, 0.55, 0.25), (0.45, 0.60, 0.30), (0.55, 0.60, 0.25)),
        trunk=(0.50, 0.40, 0.25), rock=(0.65, 0.38, 0.25),
        wall=((0.92, 0.82, 0.60), (0.80, 0.62, 0.42), (0.95, 0.90, 0.80)),
        roof=(0.70, 0.50, 0.30), pillar=(0.93, 0.85, 0.68), sky=(0.95, 0.85, 0.65), tree_height=3.5),
    "snow": Palette(
        ground_low=(0.88, 0.91, 0.95), ground_high=(0.98, 0.98, 1.00),
        foliage=((0.10, 0.28, 0.22), (0.14, 0.34, 0.30), (0.20, 0.30, 0.25)),
        trunk=(0.30, 0.22, 0.16), rock=(0.35, 0.38, 0.44),
        wall=((0.45, 0.30, 0.22), (0.60, 0.40, 0.28), (0.70, 0.70, 0.72)),
        roof=(0.90, 0.92, 0.96), pillar=(0.62, 0.66, 0.74), sky=(0.70, 0.74, 0.82), tree_height=6.0),
}
BIOME_NAMES = tuple(BIOMES) + ("mixed",)

# Landmark tower colours: saturated and distinct from every biome palette.
LANDMARK_COLORS = ((0.90, 0.10, 0.10), (0.10, 0.30, 0.95), (0.95, 0.85, 0.05),
                   (0.85, 0.10, 0.85), (0.05, 0.85, 0.85), (1.00, 0.50, 0.00))


def _check_range(name: str, value: float, lo: float, hi: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise SpecError(f"WorldSpec.{name} must be a finite number, got {value!r}")
    if not lo <= value <= hi:
        raise SpecError(f"WorldSpec.{name} = {value} is out of range: expected {lo} to {hi}")


@dataclass(frozen=True)
class WorldSpec:
    """Everything about a world except its seed. Lengths in metres, angles in degrees.

    world_size: side of a square bounded world centred on the origin; 0 means endless.
    object_density: objects per 100 square metres. landmark_spacing: one coloured tower per cell of
    this size (0: none). sky_color: RGB in 0..1, or () for the biome's sky. brightness: how much light falls on
    every face, sun and ambient together (1: daylight; a night world is about 0.4). export_radius: half-side of
    the square region (around the origin) that `generate_world` returns and `export` writes.
    """

    biome: str = "mixed"
    world_size: float = 0.0
    chunk_size: float = 16.0
    terrain_height: float = 4.0
    roughness: float = 0.5
    object_density: float = 1.5
    object_kinds: tuple[str, ...] = OBJECT_KINDS
    landmark_spacing: float = 40.0
    sky_color: tuple[float, ...] = ()
    light_azimuth: float = 35.0
    light_elevation: float = 50.0
    brightness: float = 1.0
    view_distance: float = 40.0
    export_radius: float = 48.0

    def __post_init__(self):
        if self.biome not in BIOME_NAMES:
            raise SpecError(f"unknown biome {self.biome!r}: expected one of {', '.join(BIOME_NAMES)}")
        _check_range("world_size", self.world_size, 0.0, 100_000.0)
        _check_range("chunk_size", self.chunk_size, 4.0, 128.0)
        if self.world_size and self.world_size < self.chunk_size:
            raise SpecError(f"WorldSpec.world_size = {self.world_size} is smaller than chunk_size = "
                            f"{self.chunk_size}: expected 0 (endless) or at least one chunk")
        _check_range("terrain_height", self.terrain_height, 0.0, 60.0)
        _check_range("roughness", self.roughness, 0.0, 1.0)
        _check_range("object_density", self.object_density, 0.0, 20.0)
        if isinstance(self.object_kinds, str) or not all(isinstance(k, str) for k in self.object_kinds):
            raise SpecError(f"WorldSpec.object_kinds must be a tuple of names, got {self.object_kinds!r}")
        for kind in self.object_kinds:
            if kind not in OBJECT_KINDS:
                raise SpecError(f"unknown object kind {kind!r} in WorldSpec.object_kinds: "
                                f"expected some of {', '.join(OBJECT_KINDS)}")
        object.__setattr__(self, "object_kinds", tuple(self.object_kinds))
        _check_range("landmark_spacing", self.landmark_spacing, 0.0, 10_000.0)
        if 0 < self.landmark_spacing < 16:
            raise SpecError(f"WorldSpec.landmark_spacing = {self.landmark_spacing}: expected 0 (none) or >= 16")
        if len(self.sky_color) not in (0, 3):
            raise SpecError(f"WorldSpec.sky_color must be () or three numbers in 0..1, got {self.sky_color!r}")
        for c in self.sky_color:
            _check_range("sky_color", c, 0.0, 1.0)
        object.__setattr__(self, "sky_color", tuple(float(c) for c in self.sky_color))
        _check_range("light_azimuth", self.light_azimuth, 0.0, 360.0)
        _check_range("light_elevation", self.light_elevation, 5.0, 90.0)
        _check_range("brightness", self.brightness, 0.1, 1.5)
        _check_range("view_distance", self.view_distance, 8.0, 400.0)
        _check_range("export_radius", self.export_radius, 1.0, 2_000.0)

    @property
    def bounded(self) -> bool:
        return self.world_size > 0

    def sky(self) -> tuple[float, float, float]:
        """The sky colour when it does not depend on the seed (see World.sky_color)."""
        if self.sky_color:
            return self.sky_color  # type: ignore[return-value]
        return BIOMES["grass" if self.biome == "mixed" else self.biome].sky

    def light_direction(self) -> tuple[float, float, float]:
        """Unit vector pointing from the ground towards the sun (y is up)."""
        az, el = math.radians(self.light_azimuth), math.radians(self.light_elevation)
        return (math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict) -> "WorldSpec":
        return from_dict(cls, values, SpecError)

    @classmethod
    def from_json(cls, text: str) -> "WorldSpec":
        try:
            values = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecError(f"world spec is not valid JSON: {e}") from None
        if not isinstance(values, dict):
            raise SpecError("world spec JSON must be an object of field: value")
        return cls.from_dict(values)

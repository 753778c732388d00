"""`ModelConfig` and the named presets: `tiny` (tests, seconds), `small` (the bundled model), `wide`, `base` (GPU/TPU)."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from worldgen.actions import MAX_ACTIONS, NUM_ACTIONS
from worldgen.errors import WorldgenError
from worldgen.frozen import from_dict
from worldgen.model import pyramid


@dataclass(frozen=True)
class ModelConfig:
    """Shape-setting hyper-parameters of the world model.

    geometry: keep a 3D point cache and reproject it (needs depth + poses); False = plain 2D predictor.
    context: real frames given at the start of a rollout, and frames each training target sees.
    cache_frames: world-memory capacity in frames of points: `context` frames pinned for the real start, the
        rest a ring of dreamed surfels written once each (fixed capacity, fixed cost per step).
    channels: U-Net widths per resolution level. sample_steps: flow-matching sampling steps per frame.
    sample_temperature: scale of the starting noise when sampling (1 = as trained, 0 = mean prediction).
    provenance: one more network input that says which memory pixels come from the real frames (1) and which
        from dreamed content or nowhere (0), so the network can trust the one and repair the other.
    fill: where memory draws nothing, the network starts from the drawing's holes filled from the known pixels
        around them (`fill.fill_holes`) instead of from the last frame, which a turn or a step has moved.
    fill_behind: with `fill`, a hole that has memory on both sides in its row starts from the farther of the two
        (`fill.fill_holes(..., behind=True)`): what a near surface uncovers as the camera moves stood behind it,
        so the network starts from the sky or the far ground there, not from a blend with the near surface
        (docs/model.md, session 30). An inference rule: it needs no new weights (training uses it too).
    fill_edge: with `fill`, a strip at the frame's edge that a turn or a step uncovers (memory knows pixels on one
        side of it only, in its row) starts from its row's background, the nearest known pixel no nearer than
        `fill.EDGE_BACKGROUND` times the row's median known disparity, where the pixel at the strip's edge is
        dreamed: the sky and the terrain go on past the edge of what memory shows, and the network's own guess
        there (a blur of trees on the horizon) is not carried across the strip. What a real frame shows at the
        edge goes on into it as without the rule (`fill.fill_holes(..., edge=True)`, docs/model.md, session 36).
        An inference rule.
    noise_level: the network is told how much colour noise its context carries (`CONTEXT_NOISE_MAX` at most in
        training, 0 at inference, where it sees the memory as drawn), so it learns to keep clean inputs sharp
        instead of smoothing every input as if it might be noisy (as GameNGen conditions on its noise level).
    move_outcomes: the camera head also classifies which outcome of the player's collision rule a move has (the
        whole learned step, its slide along world x or z, or none) and takes that outcome where it is sure of it
        (else the regressed move), so an unblocked step is exact and does not drift a dream's position (see
        `WorldModel.pose_head`).
    show_memory: the memory is the authority on what has been seen. Wherever it knows a pixel at full
        resolution (a real or a dreamed surface written before), the frame shows the memory's drawing, and
        the network's colours are used only where memory does not know the pixel, so a surface
        seen once is never re-invented (`world_model.complete`). An inference rule: it needs no new weights.
    palette_rows: the network's colours become their nearest among the real start frames' pixels within this
        many rows (`memory.start_palette`; the camera is level, so a row is an elevation), so a dream paints
        with its own world's colours instead of drifting to the greens of others. 0: off. An inference rule.
    palette_prior: how far (signed RGB, a standard deviation) the network's colour may be from the one it means:
        a colour goes to the palette colour p of its row that is likeliest, the least |x - p|^2 - 2 s^2 log(share
        of p among the row's start-frame pixels), so a colour between two goes to the one the world shows more
        of. 0: the nearest. An inference rule (with `palette_rows`).
    palette_reach: signed RGB. A colour farther than this from every palette colour of its row is not moved to
        one: the network is unsure among the world's colours there (a hedge between sky and an object beside
        it, say), and its blend is nearer the truth than whichever palette colour is nearest to the blend
        (docs/model.md, session 29). 0: every colour is moved. An inference rule (with `palette_rows`).
    transient_near: metres. Dreamed content this near the eye that stands above the ground (higher than
        `memory.NEAR_GROUND` below the eye) is shown but not written to memory, and is painted again from the
        last frames at the next step. The network's depth is least sure for near content it invents, and a
        near surface stored at a wrong depth (a tree crown smeared round by a turn, a horizon band grown into a
        wall) fills the view for as long as the camera stays near it. 0: off. An inference rule.
    collide: a move the camera head takes into something the real start frames show standing there is blocked
        as the player's is (`motion.collide`): the camera takes the first of the whole step, its slide
        along world x, along world z, or none that the player's disc does not enter. Only the real frames'
        points count; the dream's own would stop it at what it invented. Needs `move_outcomes`. An inference rule.
    real_surfaces: where the real start frames' points are magnified (the camera walked up to what they saw from
        afar, or looks down at ground they saw at a grazing angle) or leave holes between them, those frames are
        drawn as whole surfaces instead: each pixel's ray is followed to where it meets a frame's depth, which
        gives its colour there (`worldgen.model.surface`), so a magnified real surface is not a sieve for the
        network to repaint (docs/model.md, session 34). Needs geometry. An inference rule.
    edge_share: where the real start frames disagree about a pixel at a silhouette (some show a surface there,
        others only one more than `pyramid.EDGE_FAR` times farther), and the one taken nearest the camera sees
        past the silhouette, the pixel takes the far surface's colour in the share of the frames that do
        (`pyramid.edge_share`): each frame puts an edge a fraction of a pixel from where the others put it, and
        the nearest surface winning everywhere drew their union, a pixel wider than the truth's (docs/model.md,
        session 41). Needs geometry. An inference rule.
    ground_within: metres. A pixel the network says is sky (its disparity reads back as sky) whose ray meets a
        level ground `worldgen.player.EYE_HEIGHT` under the eye within this view depth is that ground instead
        (`sky.ground_not_sky`): terrain stands under every ray that goes down that steeply (the truth's
        sky reaches 6 degrees under the horizon at most, over a crest), and a downward ray stored as sky stays
        in that direction at any distance walked, drawn over the ground as a patch that moves with the camera
        (docs/model.md, session 39). And a pixel the network says lies farther than a level ground
        `sky.GROUND_FLOOR` lower is on that ground (`sky.ground_floor`): ground painted low reads as a slope down to
        the camera head, and the eye sank under the dream's ground (session 43). 0: off. Needs geometry. An
        inference rule (training's rollouts, `worldgen dream-data`, use it too).
    sky_above: degrees. A painted pixel (one memory did not know at full resolution) that the network says is sky
        and whose ray points more than this far above the horizon takes the sky's colour, as the real start frames
        show it (`sky.sky_coloured`; a world has one sky colour). The network's hedge over objects it
        cannot know, pale ghosts in the sky's colours, is worth keeping near the horizon, where objects stand; high
        above it, where the truth is nearly always sky, it is speckle that is stored and shown for good
        (docs/model.md, session 40). 0: off. Needs geometry. An inference rule (training's rollouts use it too).
    real_ground: where the real start frames show the ground all around the camera's new position and the eye the
        camera head gives is more than `memory.STAND_OFF` from `worldgen.player.EYE_HEIGHT` over it, the eye stands
        there (`memory.stand`): the camera head, trained mostly on gentle terrain, loses the eye's height on the
        steep slopes of described worlds, and the dream then looks at its world from a wrong height (docs/model.md,
        session 44). Needs geometry. An inference rule (training's rollouts use it too).
    pyramid_levels: levels of the pixel pyramid the memory splats its points into (`worldgen.model.pyramid`): a
        point is drawn on the level where its footprint is about one cell, so at most 2^(levels - 1) pixels wide.
        3 (at most 4x4) was all there was until session 45; with 4, a trunk or a wall walked up to within a few
        metres of where the real frames saw it from is drawn whole, not as a sieve whose holes the network
        repaints with the sky behind it (docs/model.md, session 45). An inference rule (training's warps use it
        too).
    """

    resolution: int = 64
    num_actions: int = NUM_ACTIONS
    geometry: bool = True
    context: int = 4
    cache_frames: int = 20
    channels: tuple[int, ...] = (16, 48, 96)
    embed_dim: int = 64
    sample_steps: int = 2
    sample_temperature: float = 1.0
    provenance: bool = False
    fill: bool = False
    fill_behind: bool = False
    fill_edge: bool = False
    noise_level: bool = False
    move_outcomes: bool = False
    show_memory: bool = False
    palette_rows: int = 0
    palette_prior: float = 0.0
    palette_reach: float = 0.0
    transient_near: float = 0.0
    collide: bool = False
    real_surfaces: bool = False
    edge_share: bool = False
    ground_within: float = 0.0
    sky_above: float = 0.0
    real_ground: bool = False
    pyramid_levels: int = pyramid.LEVELS

    def __post_init__(self):
        if not 16 <= self.resolution <= 512 or self.resolution % (2 ** (len(self.channels) - 1)):
            raise WorldgenError(f"ModelConfig.resolution = {self.resolution}: expected 16..512 and divisible by "
                                f"{2 ** (len(self.channels) - 1)} (one halving per U-Net level)")
        if not 2 <= self.num_actions <= MAX_ACTIONS:
            raise WorldgenError(f"ModelConfig.num_actions = {self.num_actions}: expected 2..{MAX_ACTIONS}")
        if not 1 <= self.context <= 16:
            raise WorldgenError(f"ModelConfig.context = {self.context}: expected 1..16")
        if not self.context <= self.cache_frames <= 64:
            raise WorldgenError(f"ModelConfig.cache_frames = {self.cache_frames}: expected context..64")
        if not self.channels or any(c < 4 or c % 4 for c in self.channels):
            raise WorldgenError(f"ModelConfig.channels = {self.channels}: expected widths that are multiples of 4")
        if not 0.0 <= self.sample_temperature <= 2.0:
            raise WorldgenError(f"ModelConfig.sample_temperature = {self.sample_temperature}: expected 0..2")
        if not 0 <= self.palette_rows <= self.resolution:
            raise WorldgenError(f"ModelConfig.palette_rows = {self.palette_rows}: expected 0..{self.resolution}")
        if not 0.0 <= self.palette_prior <= 0.5:
            raise WorldgenError(f"ModelConfig.palette_prior = {self.palette_prior}: expected 0..0.5 (signed RGB)")
        if not 0.0 <= self.palette_reach <= 3.5:
            raise WorldgenError(f"ModelConfig.palette_reach = {self.palette_reach}: expected 0..3.5 (signed RGB)")
        if not 0.0 <= self.transient_near <= 100.0:
            raise WorldgenError(f"ModelConfig.transient_near = {self.transient_near}: expected 0..100 metres")
        if self.ground_within and not 1.0 <= self.ground_within <= 1000.0:
            raise WorldgenError(f"ModelConfig.ground_within = {self.ground_within}: expected 0 (off) or 1..1000 "
                                "metres")
        if not 0.0 <= self.sky_above < 90.0:
            raise WorldgenError(f"ModelConfig.sky_above = {self.sky_above}: expected 0 (off) up to 90 degrees")
        for rule in ("fill_behind", "fill_edge"):
            if getattr(self, rule) and not self.fill:
                raise WorldgenError(f"ModelConfig.{rule} needs fill (it changes how the memory's holes are filled)")
        if self.collide and not (self.geometry and self.move_outcomes):
            raise WorldgenError("ModelConfig.collide needs geometry and move_outcomes (the outcomes it chooses "
                                "from)")
        if self.ground_within and not self.geometry:
            raise WorldgenError("ModelConfig.ground_within needs geometry (it puts the dream's depth on the ground)")
        if self.sky_above and not self.geometry:
            raise WorldgenError("ModelConfig.sky_above needs geometry (the real frames' sky and each ray's elevation)")
        if self.real_surfaces and not self.geometry:
            raise WorldgenError("ModelConfig.real_surfaces needs geometry (it draws the real frames' depth)")
        if self.real_ground and not self.geometry:
            raise WorldgenError("ModelConfig.real_ground needs geometry (the real frames' points, the camera's pose)")
        if self.edge_share and not self.geometry:
            raise WorldgenError("ModelConfig.edge_share needs geometry (it compares the real frames' depths)")
        if not 1 <= self.pyramid_levels <= 6 or self.resolution >> (self.pyramid_levels - 1) < 4:
            raise WorldgenError(f"ModelConfig.pyramid_levels = {self.pyramid_levels}: expected 1..6, with cells of "
                                f"the top level at most a quarter of the {self.resolution}-pixel frame")
        if not 1 <= self.sample_steps <= 16:
            raise WorldgenError(f"ModelConfig.sample_steps = {self.sample_steps}: expected 1..16")
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "ModelConfig":
        return from_dict(cls, values, WorldgenError)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


PRESETS: dict[str, ModelConfig] = {
    "tiny": ModelConfig(resolution=32, context=2, cache_frames=4, channels=(8, 16), embed_dim=16, sample_steps=2),
    "small": ModelConfig(),
    # the bundled recipe's network at about 1.7x the multiply-adds, for a lent GPU: a CPU step costs 1.3x small's
    # (docs/model.md, session 48), about the bundled model's of issue 9's day
    "wide": ModelConfig(channels=(24, 64, 128), embed_dim=96),
    "base": ModelConfig(resolution=128, context=4, cache_frames=32, channels=(64, 128, 256, 256), embed_dim=256,
                        sample_steps=4),
}


def preset(name: str, **overrides) -> ModelConfig:
    if name not in PRESETS:
        raise WorldgenError(f"unknown model preset {name!r}: expected one of {', '.join(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)

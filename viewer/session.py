"""One player's world in the viewer: the dream (world model), the truth beside it, undo, exports.

Dimension keys: K context frames, H, W, C.

A `PlaySession` is only touched under its own lock; the model is shared by all sessions and its calls
are serialised by the Generator's lock; GL rendering is serialised by a process-wide lock.
"""
from __future__ import annotations

import base64
import io
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np
from PIL import Image

from training.long_walk import stopped_moves
from training.metrics import pooled_psnr
from worldgen.actions import Action
from worldgen.env import WorldEnv
from worldgen.errors import WorldgenError
from worldgen.export import export_world
from worldgen.model.runner import Generator
from worldgen.model.world_model import SOURCES, WorldState, to_uint8
from worldgen.player import PlayerState, camera_pose, step as player_step
from worldgen.render import Renderer
from worldgen.spec import WorldSpec
from worldgen.world import World

GL_LOCK = threading.Lock()
UNDO_LIMIT = 32
LOG_LIMIT = 3000  # steps kept for the MP4 and the dreamed point cloud
MAX_UPLOAD_PIXELS = 40_000_000


def png_data_url(rgb_HWC: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(rgb_HWC, np.uint8)).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def pack_frame(fields: dict, *images_HWC: np.ndarray | None) -> bytes:
    """A binary frame: a 4-byte little-endian length, that many bytes of JSON fields, then each image's raw
    bytes (row-major uint8: H*W*3 for RGB, H*W for a map of indices), those that are None left out. The page
    draws them into canvases without decoding anything (player.js); PNG data URLs cost both ends a codec and
    base64 on every frame."""
    head = json.dumps(fields).encode()
    return b"".join([len(head).to_bytes(4, "little"), head]
                    + [np.ascontiguousarray(im, np.uint8).tobytes() for im in images_HWC if im is not None])


def load_upload(path: str | Path, max_bytes: int) -> Image.Image:
    """Open an uploaded picture safely, or raise WorldgenError saying what is wrong with it."""
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise WorldgenError(f"{path.name} is {size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB")
    Image.MAX_IMAGE_PIXELS = MAX_UPLOAD_PIXELS
    try:
        im = Image.open(path)
        if im.width * im.height > MAX_UPLOAD_PIXELS:  # checked before decoding a single pixel
            raise WorldgenError(f"{path.name} is {im.width}x{im.height} pixels; the limit is "
                                f"{MAX_UPLOAD_PIXELS / 1e6:.0f} million")
        im.load()
        im.seek(0)
    except WorldgenError:
        raise
    except (Image.DecompressionBombError, Image.UnidentifiedImageError, OSError, ValueError) as e:
        raise WorldgenError(f"{path.name} is not an image worldgen can read ({type(e).__name__})") from None
    return im.convert("RGB")


def checked_action(value) -> int:
    """An action index from a page's request; JSON numbers such as 1.5, Infinity or true are refused."""
    if type(value) is not int:
        raise WorldgenError(f"an action is an integer index, got {value!r}")
    return value


def _truth(obs: dict) -> tuple:
    """(rgb, depth, pose) of an engine observation: one true context frame."""
    return obs["rgb"], obs["depth"], obs["pose"]


class Ahead(NamedTuple):
    """A step of the dream started before it was asked for (`PlaySession.prefetch`)."""

    action: int
    base: WorldState  # the state it steps from
    key: jax.Array  # the session's key after it
    result: tuple  # Generator.step's (state, outputs), computing in the background
    followed: bool  # whether it was given the player's camera (`PlaySession.follow`)


@dataclass
class Snapshot:
    """Everything `undo` restores."""

    gen_state: WorldState
    player: PlayerState | None
    context: tuple
    step: int
    stopped: int


class PlaySession:
    def __init__(self, gen: Generator, renderer: Renderer, client: str = "local", planner=None):
        self.gen = gen
        self.planner = planner  # a worldgen.planner.LatentPlanner shared by all sessions, or None
        self.renderer = renderer  # shared by all sessions, used under GL_LOCK
        self.k = gen.config.context
        self.res = gen.config.resolution
        self.lock = threading.Lock()
        self.last_seen = time.monotonic()
        self.token = secrets.token_urlsafe(16)  # lets the page's play loop reach this session
        self.file_id = secrets.token_hex(6)  # names this session's export files: never from client input
        self.client = client  # the address that made it (viewer.store.SessionStore.get)
        self.env: WorldEnv | None = None  # the truth: a free-walking engine env on the shared renderer
        self.image: Image.Image | None = None
        self.version = 0
        self.key = jax.random.key(0)
        self.follow = False  # the dream is given the player's camera at each step (`set_follow`), a setting
        self._clear()

    def _clear(self):
        self.gen_state, self.step_count = None, 0
        self.ahead: Ahead | None = None
        self.context: deque = deque(maxlen=self.k)  # last K true (rgb, depth, pose) for re-anchoring
        self.history: deque[Snapshot] = deque(maxlen=UNDO_LIMIT)
        self.log: deque = deque(maxlen=LOG_LIMIT)  # (dream rgb, truth rgb | None, depth, pose)
        self.sq_err, self.n_err = 0.0, 0
        self.dream = self.truth = None
        self.known = None  # what memory knew of each pixel of the dream (indices into SOURCES), after a step
        self.last_psnr = None
        self.stopped = 0  # moves on end after which the dream's camera stood still (long_walk.stopped_moves)
        self.goal = None  # (rgb, latent) of a remembered true view to walk back to

    @property
    def world(self) -> World | None:
        return self.env.world if self.env is not None else None

    @property
    def player(self) -> PlayerState | None:
        return self.env.player if self.env is not None else None

    # --- starting points ------------------------------------------------------------------------
    def new_world(self, seed: int, spec: WorldSpec) -> dict:
        env = WorldEnv(self.res, task=None, spec=spec, renderer=self.renderer)
        with GL_LOCK:
            env.reset(seed=seed)  # a refused seed or spec raises here, before anything is cleared
            start = env.look_around(self.k)  # the dream's real start frames, the last the spawn's view
        self._clear()
        self.env, self.image = env, None
        self.context.extend(_truth(obs) for obs in start)
        self._anchor()
        return self._changed()

    def dream_from_image(self, image: Image.Image) -> dict:
        state = self.gen.from_image(image)
        self._clear()
        self.env, self.image = None, image
        self.gen_state = state
        self.dream = np.asarray(to_uint8(self.gen_state.last_rgb[0]))
        return self._changed()

    def reset(self) -> dict:
        if self.world is not None:
            return self.new_world(self.world.seed, self.world.spec)
        if self.image is not None:
            return self.dream_from_image(self.image)
        raise WorldgenError("nothing to reset yet: start a world first")

    def reanchor(self) -> dict:
        """Replace the dream by the true frames of the current place."""
        if self.world is None:
            raise WorldgenError("re-anchoring needs a world from a seed (a dream from an image has no truth)")
        self._anchor()
        return self._changed()

    def _anchor(self):
        rgb, depth, pose = (np.stack(x)[None] for x in zip(*self.context))
        intr = self.renderer.intrinsics
        self.gen_state = self.gen.init(rgb, depth, pose, intr) if self.gen.config.geometry else self.gen.init(rgb)
        self.dream = self.truth = rgb[0, -1]
        self.known = None


    # --- play -----------------------------------------------------------------------------------
    def step(self, action: int) -> dict:
        self.advance(action)
        return self.view()

    def advance(self, action: int) -> None:
        """One step of the dream and of the truth beside it (without encoding a view: see `view`, `frame`)."""
        action = self._action(action)
        self.history.append(Snapshot(self.gen_state, self.player, tuple(self.context), self.step_count,
                                     self.stopped))
        before_44 = jax.device_get(self.gen_state.pose)[0]
        ahead, self.ahead = self.ahead, None
        if ahead is None or ahead.action != action or ahead.base is not self.gen_state \
                or ahead.followed != self.following:
            ahead = self._start(action)  # dispatched asynchronously: the truth renders while the model computes
        self.key, (self.gen_state, out) = ahead.key, ahead.result
        self.step_count += 1
        truth = None
        if self.env is not None:
            with GL_LOCK:
                obs = self.env.step(action)[0]
            self.context.append(_truth(obs))
            truth = self.truth = obs["rgb"]
        # One transfer, then batch element 0 in NumPy: indexing a device array dispatches a computation per output.
        out = jax.device_get(out)
        self.dream, self.known = out["rgb"][0], out["source"][0]
        # which of another game's actions move is not known; a followed dream stops where the player does
        ours = self.gen.config.num_actions == len(Action) and not ahead.followed
        stood = ours and stopped_moves(out["pose"][:1, None], before_44[None], np.array([[action]]))[0, 0]
        self.stopped = self.stopped + 1 if stood else 0
        if truth is not None:
            err = float(np.mean((self.dream.astype(np.float64) - truth) ** 2))
            self.sq_err, self.n_err = self.sq_err + err, self.n_err + 1
            self.last_psnr = pooled_psnr(self.dream[None], truth[None])
        self.log.append((self.dream, truth, out["depth"][0], out["pose"][0]))

    def _action(self, action: int) -> int:
        if self.gen_state is None:
            raise WorldgenError("start a world or a dream first")
        return int(Action(action)) if self.gen.config.num_actions == len(Action) else int(action)

    def prefetch(self, action: int) -> None:
        """Start the dream's next step for `action` now: JAX computes it in the background (while the last frame
        travels to the page and the page draws it, `viewer.stream`), and the next `advance` with that action
        from this state takes it as its own, with the key it would have used, so the frames are the ones it
        would have made. Any other change (another action, undo, a new world) leaves it unused."""
        self.ahead = self._start(self._action(action))

    def _start(self, action: int) -> Ahead:
        key, sub = jax.random.split(self.key)
        pose = None
        if self.following:  # where the engine's player will stand: its physics alone, before the truth renders
            pose = camera_pose(self.world, player_step(self.world, self.player, action)[0])[None]
        result = self.gen.step(self.gen_state, np.array([action], np.int32), sub, pose)
        return Ahead(action, self.gen_state, key, result, pose is not None)

    @property
    def following(self) -> bool:
        """Whether the next step is given the player's camera: `follow` is on and there is a player to follow."""
        return self.follow and self.env is not None

    def set_follow(self, on: bool) -> dict:
        """Follow the player: each dreamed frame is drawn at the engine's camera (the world's collisions), so the
        dream never walks through a wall the player stops at nor stops where the player walks on; only the frames
        are dreamed. Off (the default), the model's own camera head moves the dream from the keys alone."""
        if on and not self.gen.config.geometry:
            raise WorldgenError("this model has no geometry (it was trained without depth): it cannot follow the "
                                "player's camera")
        if on and self.gen.config.num_actions != len(Action):
            raise WorldgenError("this model was trained on another game's actions: the player cannot be followed")
        self.follow = bool(on)
        self.stopped = 0
        return self._changed()  # a frame streamed before it is dropped by the page

    def remember_view(self) -> dict:
        """Remember the current true view as the goal that `plan_action` walks back to."""
        if self.planner is None:
            raise WorldgenError("this viewer has no latent model to plan with (start it with worldgen play "
                                "--latent DIR)")
        if self.world is None or self.truth is None:
            raise WorldgenError("remembering a view needs a world from a seed (a dream from an image has no truth)")
        self.goal = (self.truth.copy(), self.planner.encode_goal(self.truth))
        return self._changed()

    def plan_action(self) -> int:
        """The action the latent planner chooses from the true view toward the remembered one."""
        if self.goal is None:
            raise WorldgenError("remember a view first, then walk back to it")
        return self.planner.plan(self.truth, self.goal[1], self.step_count)[0]

    def undo(self, n: int = 1) -> dict:
        n = min(int(n), len(self.history))
        if n <= 0:
            raise WorldgenError("nothing to undo")
        for _ in range(n):
            snap = self.history.pop()
            if self.log:
                self.log.pop()
        self.gen_state, self.step_count, self.stopped = snap.gen_state, snap.step, snap.stopped
        if self.env is not None:
            with GL_LOCK:
                self.env.place(snap.player)
        self.context = deque(snap.context, maxlen=self.k)
        self.dream, self.known = np.asarray(to_uint8(self.gen_state.last_rgb[0])), None
        self.truth = self.context[-1][0] if self.world is not None else None
        return self._changed()

    def _changed(self) -> dict:
        self.version += 1
        return self.view()

    def _fields(self) -> dict:
        mean = 10 * np.log10(255.0 ** 2 / max(self.sq_err / self.n_err, 1e-10)) if self.n_err else None
        number = lambda x: None if x is None else float(x)  # a NumPy float reaches the page as no number
        return {"step": self.step_count, "resolution": self.res, "psnr": number(self.last_psnr),
                "mean_psnr": number(mean),
                "version": self.version, "undo": len(self.history), "source": self.describe(), "token": self.token,
                "stopped": self.stopped, "follow": self.following}

    def view(self) -> dict:
        """The whole view, pictures as PNG data URLs (the Gradio handlers' and API's answer)."""
        return {**self._fields(), "dream": png_data_url(self.dream) if self.dream is not None else None,
                "truth": png_data_url(self.truth) if self.truth is not None else None,
                "goal": png_data_url(self.goal[0]) if self.goal is not None else None}

    def frame(self, **extra) -> bytes:
        """The view as the play channel streams it (`viewer.stream`): `pack_frame` of the fields (with
        `extra`), the dream's RGB bytes, the truth's when there is one, and after a step what memory knew of
        each of the dream's pixels (one byte each, an index into the `memory` field's names,
        `world_model.SOURCES`). No goal: streaming never changes it."""
        fields = {**self._fields(), **extra, "truth": self.truth is not None,
                  "memory": list(SOURCES) if self.known is not None else None}
        return pack_frame(fields, self.dream, self.truth, self.known)

    def describe(self) -> str:
        if self.world is not None:
            return f"world {self.world.seed} ({self.world.spec.biome})"
        return "dream from an image" if self.image is not None else "nothing yet"

    # --- exports --------------------------------------------------------------------------------
    def export_glb(self, path: Path) -> Path:
        if self.world is None:
            raise WorldgenError("the GLB export needs a world from a seed")
        export_world(self.world, path, "glb")
        return path

    def export_dream_ply(self, path: Path) -> Path:
        """Coloured points fused from the model's predicted depth at the camera poses of the steps played."""
        import trimesh

        from worldgen.model.geometry import unproject
        if not self.log:
            raise WorldgenError("play a few steps first: the dreamed cloud is built from generated frames")
        if not self.gen.config.geometry:
            raise WorldgenError("this model has no geometry (it was trained without depth), so there is no 3D")
        intr = self.gen_state.intrinsics
        pts, cols = [], []
        for rgb, _, depth, pose in list(self.log)[-400:]:
            p, ok = unproject(depth, pose, np.asarray(intr))
            pts.append(np.asarray(p)[np.asarray(ok)])
            cols.append(rgb.reshape(-1, 3)[np.asarray(ok)])
        cloud = trimesh.PointCloud(np.concatenate(pts), colors=np.concatenate(cols))
        cloud.export(path)
        return path

    def export_mp4(self, path: Path) -> Path:
        import imageio.v3 as iio
        if not self.log:
            raise WorldgenError("play a few steps first: there is nothing to record yet")
        frames = [np.concatenate([d, t if t is not None else np.zeros_like(d)], axis=1) for d, t, _, _ in self.log]
        video = np.stack(frames).repeat(4, axis=1).repeat(4, axis=2)
        iio.imwrite(path, video, fps=12, codec="libx264", macro_block_size=1)
        return path

    def close(self):
        """Free what the session holds (its model state and logs); the shared renderer stays."""
        self._clear()

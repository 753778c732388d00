"""The engine environment: a gymnasium `Env` over the procedural worlds, rendered, with the navigation task.

Dimension keys: H height, W width, N environments of a vector env.

`reset(seed=S)` builds world S and spawns the player as every other part of the project does
(`worldgen.player.start_rng`); without a seed the next world seed is drawn from the env's own generator.
The goal is where the curious explorer walks to in `task.goal_steps` steps from there (`worldgen.task`), or
`options={"goal": (x, z)}`. Observations: `rgb` (H, W, 3) uint8, `depth` (H, W) metres (0 = sky), `pose`
(4, 4) camera-to-world and `goal` (metres ahead, metres right). Actions are the project's action set.

With `task=None` the env is a free walk, the one truth loop of the recorder, the demo, previews, long walks,
planning and the viewer: no goal (no `goal` observation), reward 0, never terminated or truncated.
`reset(seed=S, options={"episode": E})` spawns as episode E of world S is recorded, and `episode_rng` is that
episode's random stream after the spawn, for a policy that draws from it as the recorder's explorer does.
`place(state)` puts the player at a `PlayerState` (the viewer's undo). `look_around(k)` observes from where the
player stands looking to either side and ahead: the k real frames a dream starts from in the viewer and on held
walks. A reset to the world already built (same seed, same spec) reuses it.

    env = WorldEnv(resolution=64)
    obs, info = env.reset(seed=3)
    obs, reward, terminated, truncated, info = env.step(Action.FORWARD)

`split="train"` (or "heldout") makes reset() without a seed draw only training (held-out) worlds.
`make_vector_env(n)` runs n of them in one process, sharing one renderer (gymnasium's SyncVectorEnv).
Registered with gymnasium as ENV_ID: `gymnasium.make("worldgen.env:worldgen/Walk-v0", resolution=64)`.
"""
from __future__ import annotations


import gymnasium
import numpy as np
from gymnasium import spaces

from worldgen import task as nav
from worldgen.actions import ACTION_NAMES, NUM_ACTIONS
from worldgen.dataset import is_heldout
from worldgen.errors import WorldgenError
from worldgen.player import TURN_STEP, PlayerState, camera_pose, collides, spawn, start_rng, step
from worldgen.policy import explore
from worldgen.render import Renderer, check_resolution
from worldgen.spec import WorldSpec
from worldgen.world import World

ENV_ID = "worldgen/Walk-v0"
SPLITS = ("all", "train", "heldout")  # which worlds reset() draws when it is given no seed
COORD_LIMIT = 1e6  # metres: the bounds of pose and goal observations


class WorldEnv(gymnasium.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(self, resolution: int = 64, task: nav.TaskConfig | None = nav.TaskConfig(),
                 spec: WorldSpec | None = None, render_mode: str | None = None, renderer: Renderer | None = None,
                 split: str = "all"):
        self.resolution = check_resolution(resolution)
        if split not in SPLITS:
            raise WorldgenError(f"split {split!r}: expected one of {', '.join(SPLITS)}")
        self.split = split
        if render_mode not in (None, "rgb_array"):
            raise WorldgenError(f"render_mode {render_mode!r}: expected None or 'rgb_array'")
        if renderer is not None and renderer.resolution != self.resolution:
            raise WorldgenError(f"the renderer draws {renderer.resolution}x{renderer.resolution}, the env wants "
                                f"{self.resolution}x{self.resolution}")
        self.task = task  # None: a free walk
        self.world_spec = spec or WorldSpec()  # (gymnasium's Env.spec is its registration)
        self.render_mode = render_mode
        self._renderer, self._own_renderer = renderer, renderer is None
        r, far = self.resolution, float(self.world_spec.view_distance * 1.5)  # the renderer's far plane
        observations = {
            "rgb": spaces.Box(0, 255, (r, r, 3), np.uint8),
            "depth": spaces.Box(0.0, far, (r, r), np.float32),
            "pose": spaces.Box(-COORD_LIMIT, COORD_LIMIT, (4, 4), np.float32),
        }
        if task is not None:
            observations["goal"] = spaces.Box(-COORD_LIMIT, COORD_LIMIT, (2,), np.float32)
        self.observation_space = spaces.Dict(observations)
        self.action_space = spaces.Discrete(NUM_ACTIONS)
        self.world: World | None = None
        self.player: PlayerState | None = None
        self.goal = np.zeros(2, np.float32)
        self.episode_rng: np.random.Generator | None = None
        self._pose = self._frame = None
        self._t = 0

    @property
    def renderer(self) -> Renderer:
        if self._renderer is None:
            self._renderer = Renderer(self.resolution)
        return self._renderer

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        options = dict(options or {})
        unknown = set(options) - {"goal", "episode"}
        if unknown:
            raise WorldgenError(f"unknown reset options {sorted(unknown)}: expected 'goal' and/or 'episode'")
        episode = options.get("episode", 0)
        if isinstance(episode, bool) or not isinstance(episode, (int, np.integer)) or episode < 0:
            raise WorldgenError(f"reset option episode = {episode!r}: expected an integer >= 0")
        if self.task is None and "goal" in options:
            raise WorldgenError("reset option 'goal': this env is a free walk (task=None) and has no goal")
        world = self._world(seed) if seed is not None else None  # a refused seed raises before anything changes
        super().reset(seed=seed)
        world = world or self._world(self._draw_seed())
        rng = start_rng(world.seed, int(episode))
        goal = self.goal
        if self.task is not None and "goal" not in options:
            player, goal = self._explorer_goal(world, rng)
        else:
            player = spawn(world, rng)
            if "goal" in options:
                goal = self._checked_goal(world, options["goal"])
        self.world, self.player, self.goal, self.episode_rng, self._t = world, player, goal, rng, 0
        return self._observe(), self._info(blocked=False)

    def _world(self, seed) -> World:
        """World `seed` of this env's spec: the one already built when it is that world."""
        if self.world is not None and self.world.seed == seed and self.world.spec == self.world_spec:
            return self.world
        return World(seed, self.world_spec)

    def _draw_seed(self) -> int:
        """A world seed of this env's split (held-out worlds: seed % 10 == 0, as in `worldgen.dataset`)."""
        while True:
            s = int(self.np_random.integers(0, 2 ** 31 - 1))
            if self.split == "all" or is_heldout(s) == (self.split == "heldout"):
                return s

    def _explorer_goal(self, world: World, rng: np.random.Generator):
        """The spawn, and the goal by `worldgen.task.goal_index` on an explorer walk of up to 16x goal_steps."""
        walk = [state for state, _, _ in explore(world, rng, 1 + 16 * self.task.goal_steps)]
        i = nav.goal_index(np.array([(s.x, s.z) for s in walk]), 0, self.task.goal_steps) or 0
        return walk[0], np.array([walk[i].x, walk[i].z], np.float32)

    def _checked_goal(self, world: World, goal) -> np.ndarray:
        try:
            g = np.asarray(goal, np.float64)
        except (TypeError, ValueError):
            raise WorldgenError(f"goal {goal!r}: expected (x, z) in metres") from None
        if g.shape != (2,) or not np.isfinite(g).all():
            raise WorldgenError(f"goal {goal!r}: expected two finite numbers (x, z) in metres")
        x, z = float(g[0]), float(g[1])
        if not world.in_bounds(x, z):
            raise WorldgenError(f"goal ({x:g}, {z:g}) is outside the world (side {world.spec.world_size:g} m)")
        if collides(world, x, z):
            raise WorldgenError(f"goal ({x:g}, {z:g}) is inside an obstacle of world {world.seed}: unreachable")
        return g.astype(np.float32)

    def step(self, action):
        if self.world is None:
            raise WorldgenError("call reset() before step()")
        if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)) \
                or not 0 <= int(action) < NUM_ACTIONS:
            raise WorldgenError(f"action {action!r}: expected an integer 0..{NUM_ACTIONS - 1} "
                                f"({', '.join(ACTION_NAMES)})")
        prev = self._pose
        self.player, blocked = step(self.world, self.player, int(action))
        self._t += 1
        obs = self._observe()
        if self.task is None:
            return obs, 0.0, False, False, self._info(blocked)
        reward, reached = nav.reward(prev, self._pose, self.goal, self.task.goal_radius)
        truncated = self._t >= self.task.horizon and not reached
        return obs, float(reward), bool(reached), bool(truncated), self._info(blocked)

    def place(self, state: PlayerState) -> dict:
        """Put the player at `state` in the current world (no step is counted) and observe from there."""
        if self.world is None:
            raise WorldgenError("call reset() before place()")
        if not isinstance(state, PlayerState) or collides(self.world, state.x, state.z):
            raise WorldgenError(f"place({state!r}): expected a PlayerState on free ground of world {self.world.seed}")
        self.player = state
        return self._observe()

    def look_around(self, views: int) -> list[dict]:
        """`views` observations from where the player stands, and the player left as it was: the first two look
        one turn (TURN_STEP) to the right and to the left, the rest (at least the last) straight ahead. A dream started
        from them (the viewer's new world, held walks) has seen the ground ahead in more than one view, and what
        stands beside it; from `views` copies of one view it dreamed 0.5-0.8 dB lower on held-W walks, and
        speckled (docs/model.md, session 52)."""
        if self.world is None:
            raise WorldgenError("call reset() before look_around()")
        if isinstance(views, bool) or not isinstance(views, (int, np.integer)) or views < 1:
            raise WorldgenError(f"look_around({views!r}): expected a number of views >= 1")
        here = self.player
        sides = (-TURN_STEP, TURN_STEP)[:min(2, views - 1)]
        turns = sides + (0.0,) * (views - len(sides))
        return [self.place(PlayerState(here.x, here.z, here.yaw + t) if t else here) for t in turns]

    def _observe(self) -> dict:
        self._pose = camera_pose(self.world, self.player)
        self._frame = self.renderer.render(self.world, self._pose)
        obs = {"rgb": self._frame.rgb_HWC, "depth": np.ascontiguousarray(self._frame.depth_HW, np.float32),
               "pose": self._pose}
        if self.task is not None:
            obs["goal"] = np.array(nav.goal_vector(self._pose, self.goal), np.float32)
        return obs

    def _info(self, blocked: bool) -> dict:
        info = {"world_seed": self.world.seed, "blocked": bool(blocked), "step": self._t}
        if self.task is not None:
            info["distance"] = float(nav.distance(self._pose, self.goal))
        return info

    @property
    def intrinsics(self) -> np.ndarray:
        return self.renderer.intrinsics

    def render(self):
        if self.render_mode == "rgb_array" and self._frame is not None:
            return self._frame.rgb_HWC
        return None

    def close(self):
        if self._own_renderer and self._renderer is not None:
            self._renderer.close()
        self._renderer = None if self._own_renderer else self._renderer


def make_vector_env(num_envs: int, resolution: int = 64, task: nav.TaskConfig | None = nav.TaskConfig(),
                    spec: WorldSpec | None = None, split: str = "all") -> gymnasium.vector.SyncVectorEnv:
    """n engine envs stepped together in this process; they share one renderer (GL context). An episode
    that ends is reset in the same step (its last observation is in info["final_obs"]), as the dream env does."""
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or not 1 <= num_envs <= 1024:
        raise WorldgenError(f"num_envs = {num_envs!r}: expected an integer 1..1024")
    renderer = Renderer(check_resolution(resolution), max_worlds=max(8, num_envs))
    return gymnasium.vector.SyncVectorEnv(
        [lambda: WorldEnv(resolution, task, spec, renderer=renderer, split=split) for _ in range(num_envs)],
        autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP)


if ENV_ID not in gymnasium.registry:
    gymnasium.register(ENV_ID, entry_point=WorldEnv, disable_env_checker=True)

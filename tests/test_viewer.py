"""The viewer's sessions and play channel (its Gradio app and a real headless Chromium: test_viewer_web.py)."""
import base64
import io
import json
import time

import numpy as np
import pytest
import trimesh
from flax import nnx
from PIL import Image

from viewer.session import PlaySession, checked_action, load_upload
from viewer.store import SessionStore
from worldgen.errors import WorldgenError
from worldgen.model.config import preset
from worldgen.model.runner import Generator
from worldgen.model.world_model import SOURCES, WorldModel
from worldgen.spec import WorldSpec


@pytest.fixture(scope="module")
def gen(tiny_model):
    return Generator(tiny_model)


@pytest.fixture(scope="module")
def renderer(gen):
    from worldgen.render import Renderer
    with Renderer(gen.config.resolution) as r:
        yield r


def test_session_play_undo_reanchor_and_exports(gen, renderer, tmp_path):
    s = PlaySession(gen, renderer)
    v0 = s.new_world(3, WorldSpec())
    assert v0["dream"].startswith("data:image/png;base64,") and v0["truth"] and v0["step"] == 0
    start = [rgb for rgb, _, _ in s.context]  # the dream starts from a look around, the spawn's view last
    assert len(start) == s.k and np.array_equal(start[-1], s.truth) and not np.array_equal(start[0], s.truth)
    for a in (1, 1, 3, 1):
        v = s.step(a)
    assert v["step"] == 4 and v["psnr"] is not None and v["undo"] == 4
    assert type(v["psnr"]) is type(v["mean_psnr"]) is float  # a NumPy float reaches the page as no number
    moved = s.player
    v = s.undo(2)
    assert v["step"] == 2 and s.player != moved and len(s.log) == 2
    assert s.reanchor()["step"] == 2
    glb = trimesh.load(s.export_glb(tmp_path / "w.glb"), force="mesh")
    assert len(glb.faces) > 100
    cloud = trimesh.load(s.export_dream_ply(tmp_path / "d.ply"))
    assert len(cloud.vertices) > 100 and cloud.colors.shape[0] == len(cloud.vertices)
    assert (tmp_path / "v.mp4").exists() is False and s.export_mp4(tmp_path / "v.mp4").stat().st_size > 0
    s.close()


def test_a_prefetched_step_is_the_step_it_would_have_been_and_other_changes_leave_it_unused(gen, renderer):
    plain, ahead = PlaySession(gen, renderer), PlaySession(gen, renderer)
    for s in (plain, ahead):
        s.new_world(7, WorldSpec())
    for a in (1, 1, 3, 1, 2):  # ahead always guesses "forward": right, right, wrong, right, wrong
        plain.advance(a)
        ahead.advance(a)
        np.testing.assert_array_equal(plain.dream, ahead.dream)
        ahead.prefetch(1)
    assert ahead.ahead is not None
    ahead.undo(1)  # the state it started from is gone: unused
    plain.undo(1)
    plain.advance(1)
    ahead.advance(1)
    np.testing.assert_array_equal(plain.dream, ahead.dream)
    assert ahead.step_count == plain.step_count == 5
    for s in (plain, ahead):
        s.close()


def test_the_view_counts_the_moves_on_end_the_dreams_camera_stood_still(gen, random_tiny_model, renderer):
    still = PlaySession(gen, renderer)  # a fresh tiny model's camera head moves nothing: every move stands still
    still.new_world(3, WorldSpec())
    assert still.view()["stopped"] == 0
    assert [still.step(a)["stopped"] for a in (1, 1, 3, 1, 2)] == [1, 2, 0, 1, 2]  # a turn is no move: it resets
    assert still.undo(1)["stopped"] == 1
    moving = PlaySession(Generator(random_tiny_model), renderer)  # random weights: every step moves the camera
    moving.new_world(3, WorldSpec())
    assert [moving.step(a)["stopped"] for a in (1, 1, 2)] == [0, 0, 0]
    for s in (still, moving):
        s.close()


def test_a_followed_dream_is_drawn_at_the_players_camera(gen, renderer):
    """With "follow the player" the dream is drawn at the engine's camera after every step (the fresh tiny model's
    own camera head moves nothing), a prefetched step is the step it would have been, turning follow off leaves a
    step prefetched with it unused, and a dream without a player, or a model without geometry, cannot follow."""
    import dataclasses
    plain, ahead = PlaySession(gen, renderer), PlaySession(gen, renderer)
    for s in (plain, ahead):
        s.new_world(5, WorldSpec())
        assert s.set_follow(True)["follow"] is True
    for a in (1, 1, 4, 1, 6):
        plain.advance(a)
        ahead.advance(a)
        np.testing.assert_array_equal(plain.dream, ahead.dream)
        np.testing.assert_allclose(np.asarray(ahead.gen_state.pose)[0], ahead.context[-1][2], atol=1e-5)
        assert ahead.view()["stopped"] == 0
        ahead.prefetch(1)
    ahead.set_follow(False)  # the prefetched step had the player's camera: unused
    before = ahead.gen_state.pose
    ahead.advance(1)
    np.testing.assert_allclose(np.asarray(ahead.gen_state.pose), np.asarray(before), atol=1e-6)  # its own: still
    assert ahead.view()["stopped"] == 1 and ahead.view()["follow"] is False
    fresh = PlaySession(gen, renderer)  # ticking the box mid-walk or from a fresh world compiles nothing new
    fresh.new_world(6, WorldSpec())
    fresh.advance(1)
    compiled = gen._step._cache_size()
    fresh.set_follow(True)
    fresh.advance(1)
    fresh.new_world(7, WorldSpec())
    fresh.advance(1)
    assert gen._step._cache_size() == compiled
    image = PlaySession(gen, renderer)
    image.dream_from_image(Image.new("RGB", (40, 30), (90, 140, 200)))
    assert image.set_follow(True)["follow"] is False and image.step(1)["step"] == 1  # no player: its own camera
    flat = Generator(WorldModel(dataclasses.replace(preset("tiny"), geometry=False), rngs=nnx.Rngs(0)))
    with pytest.raises(WorldgenError, match="no geometry"):
        PlaySession(flat, renderer).set_follow(True)
    with pytest.raises(WorldgenError, match="camera poses of shape"):
        gen.step(plain.gen_state, np.array([1], np.int32), plain.key, np.eye(4))
    for s in (plain, ahead, fresh, image):
        s.close()


def test_walk_to_a_remembered_view(gen, renderer):
    from worldgen.latent import LATENT_PRESETS, LatentModel
    from worldgen.planner import LatentPlanner, PlanConfig
    plain = PlaySession(gen, renderer)
    plain.new_world(3, WorldSpec())
    with pytest.raises(WorldgenError, match="no latent model to plan with"):
        plain.remember_view()
    planner = LatentPlanner(LatentModel(LATENT_PRESETS["tiny"], rngs=nnx.Rngs(0)), PlanConfig(candidates=16, elites=4))
    s = PlaySession(gen, renderer, planner=planner)
    s.new_world(3, WorldSpec())
    with pytest.raises(WorldgenError, match="remember a view first"):
        s.step(s.plan_action())
    v = s.remember_view()
    assert v["goal"].startswith("data:image/png;base64,")
    s.step(1)
    v = s.step(s.plan_action())  # the planner chose an action and both the dream and the truth took it
    assert v["step"] == 2 and v["goal"] and len(s.log) == 2
    assert s.new_world(4, WorldSpec())["goal"] is None  # a goal belongs to its world


def test_the_bundled_latent_planner_fits_the_bundled_world_model(gen):
    from viewer.app import load_planner
    from worldgen.latent import bundled_latent
    from worldgen.model.store import load_model
    planner = load_planner("bundled", Generator(load_model("bundled")))
    assert planner is not None and planner.model.config.resolution == 64
    assert load_planner("bundled", gen) is None and load_planner("none", gen) is None  # 32x32: off, not an error
    with pytest.raises(WorldgenError, match="plans at 64x64 but the world model plays at 32x32"):
        load_planner(str(bundled_latent()), gen)


def test_session_from_image_and_bad_uploads(gen, renderer, tmp_path):
    s = PlaySession(gen, renderer)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 200, 3), dtype=np.uint8)).save(tmp_path / "a.jpg")
    v = s.dream_from_image(load_upload(tmp_path / "a.jpg", 10_000_000))
    assert v["truth"] is None and s.step(1)["step"] == 1
    with pytest.raises(WorldgenError, match="needs a world from a seed"):
        s.reanchor()
    (tmp_path / "b.png").write_text("this is not an image")
    with pytest.raises(WorldgenError, match="b.png is not an image"):
        load_upload(tmp_path / "b.png", 10_000_000)
    with pytest.raises(WorldgenError, match="the limit is 0 MB"):
        load_upload(tmp_path / "a.jpg", 100)
    assert s.step(2)["step"] == 2  # the session survived
    Image.new("RGB", (7000, 7000)).save(tmp_path / "big.png")  # 49 megapixels, a tiny file
    with pytest.raises(WorldgenError, match="7000x7000 pixels; the limit is 40 million"):
        load_upload(tmp_path / "big.png", 10_000_000)


def test_a_refused_request_changes_nothing(gen, renderer):
    s = PlaySession(gen, renderer)
    s.new_world(3, WorldSpec())
    s.step(1)
    before = (s.world.seed, s.step_count, len(s.history), s.dream.copy())
    with pytest.raises(WorldgenError, match="world seed"):
        s.new_world(2 ** 70, WorldSpec())
    assert (s.world.seed, s.step_count, len(s.history)) == before[:3] and np.array_equal(s.dream, before[3])
    assert s.undo(1)["step"] == 0
    for bad in (float("inf"), 1.5, True, "1", None):
        with pytest.raises(WorldgenError, match="an action is an integer index"):
            checked_action(bad)
    with pytest.raises(ValueError):
        s.step(checked_action(99))


def test_idle_sessions_are_freed(gen):
    store = SessionStore(gen, idle_seconds=0.05)
    a = store.get("a")
    assert store.by_token(a.token) is a and store.get("b") is not a
    time.sleep(0.1)
    store.sweep()
    assert not store.sessions
    with pytest.raises(WorldgenError, match="expired"):
        store.by_token(a.token)


def test_one_client_cannot_take_every_slot(gen):
    store = SessionStore(gen, max_sessions=6, per_client=3)
    first = store.get("x0", "10.0.0.9")
    for i in range(1, 10):  # made-up session names from one address
        store.get(f"x{i}", "10.0.0.9")
    assert sum(s.client == "10.0.0.9" for s in store.sessions.values()) == 3 and "x0" not in store.sessions
    with pytest.raises(WorldgenError, match="expired"):
        store.by_token(first.token, "10.0.0.9")
    others = [store.get(f"y{i}", "10.0.0.7") for i in range(3)]
    assert all(store.by_token(s.token, "10.0.0.7") is s for s in others)
    with pytest.raises(WorldgenError, match="the viewer is full"):
        store.get("z", "10.0.0.5")


def test_tokens_and_forgetting_are_bound_to_their_client(gen):
    store = SessionStore(gen)
    mine = store.get("mine", "10.0.0.1")
    with pytest.raises(WorldgenError, match="expired"):
        store.by_token(mine.token, "10.0.0.2")  # a token seen elsewhere reaches nothing
    store.drop("mine", "10.0.0.2")  # another client cannot forget it by name
    assert store.by_token(mine.token, "10.0.0.1") is mine
    store.drop("mine", "10.0.0.1")
    assert "mine" not in store.sessions


def test_a_128_pixel_model_plays_at_128_pixels():
    """The viewer follows the loaded model's resolution: truth, dream and exports at 128x128."""
    gen128 = Generator(WorldModel(preset("tiny", resolution=128), rngs=nnx.Rngs(0)))
    s = SessionStore(gen128).get("tab")
    view = s.new_world(2, WorldSpec(biome="snow"))
    assert view["resolution"] == 128
    s.step(1)
    assert s.dream.shape == s.truth.shape == (128, 128, 3)
    png = base64.b64decode(s.view()["dream"].split(",", 1)[1])
    assert Image.open(io.BytesIO(png)).size == (128, 128)


def test_the_play_channel_streams_while_held_and_stays_at_most_one_frame_ahead(gen):
    """Over the websocket: a held action streams frames, never more than one beyond the last acknowledged; a
    released key stops it; a bad action or a token of another client gets a clear error, not a crash."""
    from fastapi import FastAPI
    from starlette.testclient import TestClient

    from viewer.stream import PATH, play_socket
    store = SessionStore(gen)
    app = FastAPI()
    app.add_api_websocket_route(PATH, play_socket(store))
    client = TestClient(app)  # its websocket peer is the address "testclient"
    session = store.get("tab", "testclient")
    session.new_world(5, WorldSpec(biome="snow"))
    with client.websocket_connect(PATH) as ws:
        ws.send_json({"token": session.token})
        ws.send_json({"action": 1})
        first, second = _frame(ws), _frame(ws)
        assert (first[0]["seq"], second[0]["seq"]) == (1, 2) and first[0]["step"] == 1
        assert np.array_equal(second[1], session.log[1][0]) and np.array_equal(second[2], session.log[1][1])
        time.sleep(0.5)  # unacknowledged: the server waits instead of queueing more
        assert session.step_count == 2
        # what memory knew of each dream pixel: indices into the names the frame carries, the model's own
        assert first[0]["memory"] == list(SOURCES) and np.array_equal(second[3], session.known)
        assert (first[3] == SOURCES.index("real")).any() and first[3].max() < len(SOURCES)
        ws.send_json({"ack": 2})
        assert _frame(ws)[0]["seq"] == 3
        ws.send_json({"action": None, "ack": 3})
        time.sleep(0.3)
        steps = session.step_count
        time.sleep(0.3)
        assert session.step_count == steps <= 4  # released: at most the frame already under way
        ws.send_json({"action": "Infinity", "ack": steps})
        replies = [ws.receive() for _ in range(steps - 3 + 1)]  # the frame under way, then the answer
        error = json.loads(replies[-1]["text"])
        assert "seq" in error and "action" in error["error"]
    other = store.get("tab2", "10.0.0.5")
    other.new_world(6, WorldSpec(biome="snow"))
    with client.websocket_connect(PATH) as ws:
        ws.send_json({"token": other.token})  # another address's session
        assert "expired" in ws.receive_json()["error"]
    assert other.step_count == 0


def _frame(ws) -> tuple:
    """A binary frame of the play channel: its fields, the dream, the truth (None without one) and what memory
    knew of each dream pixel (None before a step)."""
    data = ws.receive_bytes()
    n = int.from_bytes(data[:4], "little")
    fields = json.loads(data[4:4 + n])
    res = fields["resolution"]
    raw = np.frombuffer(data[4 + n:], np.uint8)
    size = res * res * 3 * (1 + fields["truth"])
    assert len(raw) == size + (res * res if fields["memory"] else 0)
    pixels = raw[:size].reshape(-1, res, res, 3)
    known = raw[size:].reshape(res, res) if fields["memory"] else None
    return fields, pixels[0], pixels[1] if fields["truth"] else None, known

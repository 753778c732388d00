"""The Gradio app: play a generated world in the browser, with the truth beside the dream.

Thin: every action goes to a `PlaySession` (viewer/session.py). Per-tab state is keyed by Gradio's
session hash; the play loop runs in the browser (viewer/web/player.js) and gets its frames over a websocket
(viewer/stream.py).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr
import jax
import numpy as np

from viewer.session import load_upload
from viewer.store import SessionStore
from viewer.stream import PATH, play_socket
from worldgen.describe import MAX_CHARS, describe
from worldgen.errors import WorldgenError
from worldgen.model.runner import Generator
from worldgen.model.store import load_model
from worldgen.spec import BIOME_NAMES, WorldSpec

WEB = Path(__file__).resolve().parent / "web"
MAX_UPLOAD_BYTES = 8_000_000


def warm_up(gen: Generator) -> None:
    """Compile the batch-1 step now, so the first player does not wait for it."""
    k, r = gen.config.context, gen.config.resolution
    state = gen.init(np.zeros((1, k, r, r, 3), np.uint8), np.full((1, k, r, r), 5.0, np.float32),
                     np.broadcast_to(np.eye(4, dtype=np.float32), (1, k, 4, 4)))
    key = jax.random.key(0)
    for _ in range(2):  # the second call sees device-committed inputs, a second signature to compile
        key, sub = jax.random.split(key)
        state, out = gen.step(state, np.zeros(1, np.int32), sub)
    jax.block_until_ready(out)


def load_planner(latent: str | None, gen: Generator):
    """The latent planner for "walk to a remembered view": `latent` a folder, "bundled" (the package's
    latent model), or None / "none" for no planner."""
    from worldgen.latent import bundled_latent, load_latent
    from worldgen.planner import LatentPlanner
    if latent is None or latent == "none" or (latent == "bundled" and not bundled_latent().is_dir()):
        return None
    model = load_latent(latent)
    if model.config.resolution != gen.config.resolution:
        if latent == "bundled":  # a world model of another size: no planner, rather than no viewer
            print(f"note: the bundled latent model plans at {model.config.resolution}x{model.config.resolution}; "
                  f"'walk to a remembered view' is off for this {gen.config.resolution}x{gen.config.resolution} model")
            return None
        raise WorldgenError(f"the latent model plans at {model.config.resolution}x{model.config.resolution} but the "
                            f"world model plays at {gen.config.resolution}x{gen.config.resolution}")
    planner = LatentPlanner(model)
    r = model.config.resolution
    planner.plan(np.zeros((r, r, 3), np.uint8), planner.encode_goal(np.zeros((r, r, 3), np.uint8)), 0)  # compile now
    return planner


def build_app(model: str = "bundled", idle_seconds: float = 900.0,
              latent: str | None = "bundled") -> tuple[gr.Blocks, SessionStore]:
    """The Blocks app and its sessions; the play loop's websocket (viewer/stream.py) is added at launch."""
    gen = Generator(load_model(model))
    warm_up(gen)
    store = SessionStore(gen, idle_seconds=idle_seconds, planner=load_planner(latent, gen))
    out_dir = Path(tempfile.mkdtemp(prefix="worldgen-viewer-"))

    def client_of(request) -> str:
        return request.client.host if request is not None and request.client else "unknown"

    def session(request: gr.Request):
        return store.get(request.session_hash, client_of(request))

    def control(command, seed, biome, height, density, text, undo_n, upload, request: gr.Request):
        """The one handler that changes a session's world: it alone writes the player's value."""
        s = session(request)
        said = ""
        try:
            with s.lock:
                if command == "new":
                    spec = WorldSpec(biome=biome, terrain_height=float(height), object_density=float(density))
                    view = s.new_world(int(seed), spec)
                elif command == "describe":
                    described = describe(text)
                    view = s.new_world(int(seed), described.spec)
                    said = f" · {described.summary()}"
                elif command == "image":
                    if upload is None:
                        raise WorldgenError("choose an image file first")
                    view = s.dream_from_image(load_upload(upload, MAX_UPLOAD_BYTES))
                elif command == "undo":
                    view = s.undo(int(undo_n))
                elif command == "reset":
                    view = s.reset()
                elif command == "reanchor":
                    view = s.reanchor()
                elif command == "remember":
                    view = s.remember_view()
                else:  # "load": a fresh tab gets a world of its own at once
                    view = s.view() if s.dream is not None else s.new_world(store.next_seed(), WorldSpec(biome=biome))
            return view, f"**{view['source']}**, step {view['step']}{said}"
        except (WorldgenError, ValueError) as e:
            return gr.skip(), f"⚠️ {e}"

    def follow_player(on, request: gr.Request):
        """The "follow the player" box: the dream takes the engine's camera, or its own camera head's."""
        s = session(request)
        try:
            with s.lock:
                view = s.set_follow(bool(on))
        except WorldgenError as e:
            return gr.skip(), f"⚠️ {e}", False
        said = ("the dream is drawn at the player's camera: the engine's collisions, only the frames dreamed"
                if on else "the dream moves its own camera from your keys")
        return view, f"**{view['source']}**, step {view['step']} · {said}", bool(on)

    def export(kind, request: gr.Request):
        s = session(request)
        path = out_dir / f"{s.file_id}-{s.version}-{s.step_count}.{kind}"
        try:
            with s.lock:
                {"glb": s.export_glb, "ply": s.export_dream_ply, "mp4": s.export_mp4}[kind](path)
        except WorldgenError as e:
            return (gr.skip(), gr.skip(), f"⚠️ {e}") if kind == "glb" else (gr.skip(), f"⚠️ {e}")
        if kind == "glb":
            return str(path), str(path), f"exported {path.name}"
        return str(path), f"exported {path.name}"

    # Gradio injects the request only into plain positional parameters annotated gr.Request.
    def control_handler(command):
        def handler(seed, biome, height, density, text, undo_n, upload, request: gr.Request):
            return control(command, seed, biome, height, density, text, undo_n, upload, request)
        return handler

    def export_handler(kind):
        def handler(request: gr.Request):
            return export(kind, request)
        return handler

    with gr.Blocks(title="worldgen") as demo:
        gr.Markdown("## worldgen: walk through a world the model dreams, with the engine's truth beside it")
        player = gr.HTML(value={}, html_template=(WEB / "player.html").read_text(),
                         css_template=(WEB / "player.css").read_text(), js_on_load=(WEB / "player.js").read_text(),
                         elem_id="player")
        status = gr.Markdown("loading…", elem_id="status")
        with gr.Row():
            with gr.Column():
                gr.Markdown("### New world from a seed")
                seed = gr.Number(value=0, precision=0, minimum=0, label="seed", elem_id="seed")
                biome = gr.Dropdown(list(BIOME_NAMES), value="mixed", label="biome")
                height = gr.Slider(0, 30, value=WorldSpec().terrain_height, step=0.5, label="terrain height (m)")
                density = gr.Slider(0, 6, value=WorldSpec().object_density, step=0.1, label="objects per 100 m²")
                new_btn = gr.Button("New world", variant="primary", elem_id="new-world")
                gr.Markdown("### …or describe it")
                text = gr.Textbox(label="the world in words (and the seed above)", max_length=MAX_CHARS, lines=1,
                                  placeholder="snowy mountains with a dense pine forest at sunset", elem_id="describe")
                describe_btn = gr.Button("Describe", elem_id="describe-world")
            with gr.Column():
                gr.Markdown("### Dream from an image")
                upload = gr.File(file_types=["image"], type="filepath", label="any picture (≤ 8 MB)")
                image_btn = gr.Button("Dream from this image", elem_id="dream-image")
                gr.Markdown("### Time")
                undo_n = gr.Slider(1, 32, value=4, step=1, label="undo steps")
                with gr.Row():
                    undo_btn = gr.Button("Undo", elem_id="undo")
                    reset_btn = gr.Button("Reset", elem_id="reset")
                    anchor_btn = gr.Button("Re-anchor to truth", elem_id="reanchor")
                follow = gr.Checkbox(False, label="follow the player: the dream is drawn at the engine's camera "
                                     "(its walls stop the dream), not moved by the model's own camera head",
                                     elem_id="follow")
                gr.Markdown("### Walk to a view")
                remember_btn = gr.Button("Remember this view", elem_id="remember")
                gr.Markdown("then walk away and hold G (or the ◎ button): the latent planner walks back to it.")
            with gr.Column():
                gr.Markdown("### Export")
                glb_btn = gr.Button("Procedural scene (GLB)", elem_id="export-glb")
                glb_file = gr.File(label="GLB", elem_id="glb-file")
                preview = gr.Model3D(label="preview", height=240)
                ply_btn = gr.Button("Dreamed 3D (PLY point cloud)", elem_id="export-ply")
                ply_file = gr.File(label="PLY")
                mp4_btn = gr.Button("Session video (MP4)", elem_id="export-mp4")
                mp4_file = gr.File(label="MP4")

        inputs = [seed, biome, height, density, text, undo_n, upload]
        for command, trigger in (("load", demo.load), ("new", new_btn.click), ("describe", describe_btn.click),
                                 ("describe_enter", text.submit), ("image", image_btn.click),
                                 ("undo", undo_btn.click), ("reset", reset_btn.click), ("reanchor", anchor_btn.click),
                                 ("remember", remember_btn.click)):
            trigger(control_handler(command.removesuffix("_enter")), inputs, [player, status], api_name=command,
                    concurrency_id="model")
        follow.input(follow_player, [follow], [player, status, follow], api_name="follow", concurrency_id="model")
        glb_btn.click(export_handler("glb"), None, [glb_file, preview, status], api_name="export_glb")
        ply_btn.click(export_handler("ply"), None, [ply_file, status], api_name="export_ply")
        mp4_btn.click(export_handler("mp4"), None, [mp4_file, status], api_name="export_mp4")
        def forget(request: gr.Request):
            store.drop(request.session_hash, client_of(request))

        demo.unload(forget)
    return demo, store


def launch(model: str = "bundled", host: str = "127.0.0.1", port: int = 7860, block: bool = True,
           latent: str | None = "bundled") -> gr.Blocks:
    """Serve the viewer. Only localhost unless `host` says otherwise; no extra file paths are served."""
    demo, store = build_app(model, latent=latent)
    demo.queue(default_concurrency_limit=4)
    demo.launch(server_name=host, server_port=port, allowed_paths=[], max_file_size=MAX_UPLOAD_BYTES,
                show_error=True, prevent_thread_lock=True, quiet=not block)
    demo.app.add_api_websocket_route(PATH, play_socket(store))  # before any page has a token to connect with
    if block:
        demo.block_thread()
    return demo

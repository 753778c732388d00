"""The play channel: one websocket per tab, on which the server streams frames while a key is held.

A request per frame (page asks, server steps, page shows, page asks again) leaves the model idle while a frame
travels and is drawn, so the page showed half the model's own frame rate. Here the page only says what is held
and which frame it has shown:

    page -> server   {"token": T}                      first message: the tab's session (bound to its address)
                     {"action": A}                     A: an action number, "plan", or null when nothing is held
                     {"ack": N}                        frame N is on screen
    server -> page   frame N as one binary message (PlaySession.frame, "seq": N among its fields: raw RGB that
                     the page draws into canvases), or the text {"error": message, "seq": N}

While an action is held the server steps the session again as soon as a frame is sent, and the dream's step
after that is already computing (`PlaySession.prefetch`) while the frame is packed, sent and drawn; the stream
runs at most one frame ahead of what the page has acknowledged, so a slow page gets fewer frames, never a
growing queue. Steps go through the session's lock like every other change.
"""
from __future__ import annotations

import asyncio

from starlette.websockets import WebSocket, WebSocketDisconnect

from viewer.session import checked_action
from viewer.store import SessionStore
from worldgen.errors import WorldgenError

PATH = "/worldgen/play"
AHEAD = 1  # frames the server may send beyond the last one the page acknowledged


def _step(store: SessionStore, token: str, client: str, action, seq: int) -> bytes:
    session = store.by_token(token, client)  # also keeps the session from being freed as idle
    with session.lock:
        session.advance(session.plan_action() if action == "plan" else checked_action(action))
        frame = session.frame(seq=seq)
        if action != "plan":  # the planner's next action depends on the next true view
            session.prefetch(action)
        return frame


def play_socket(store: SessionStore):
    """The websocket endpoint for `store`'s sessions."""

    async def endpoint(ws: WebSocket):
        await ws.accept()
        client = ws.client.host if ws.client else "unknown"
        try:
            hello = await ws.receive_json()
            token = str(hello.get("token")) if isinstance(hello, dict) else ""
            store.by_token(token, client)
        except WorldgenError as e:
            await ws.send_json({"error": str(e)})
            await ws.close()
            return
        except (WebSocketDisconnect, ValueError):
            return
        held = {"action": None, "acked": 0}
        wake = asyncio.Event()

        async def read():
            while True:
                try:
                    msg = await ws.receive_json()
                except (WebSocketDisconnect, ValueError, RuntimeError):
                    return  # the page left, or sent something that is not JSON
                if isinstance(msg, dict):
                    if "action" in msg:
                        held["action"] = msg["action"]
                    if isinstance(msg.get("ack"), int):
                        held["acked"] = max(held["acked"], msg["ack"])
                wake.set()

        reader = asyncio.create_task(read())
        seq = 0
        try:
            while not reader.done():
                if held["action"] is None or seq - held["acked"] > AHEAD:
                    wake.clear()
                    waiting = asyncio.create_task(wake.wait())
                    await asyncio.wait([reader, waiting], return_when=asyncio.FIRST_COMPLETED)
                    waiting.cancel()
                    continue
                seq += 1
                try:
                    await ws.send_bytes(await asyncio.to_thread(_step, store, token, client, held["action"], seq))
                except (WorldgenError, ValueError, TypeError) as e:
                    held["action"] = None  # wait for the page to press again
                    await ws.send_json({"error": str(e), "seq": seq})
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            reader.cancel()

    return endpoint

"""The viewer's sessions by id: made on first use, bounded per client and in all, freed when idle."""
from __future__ import annotations

import secrets
import threading
import time

from viewer.session import GL_LOCK, PlaySession
from worldgen.errors import WorldgenError
from worldgen.model.runner import Generator
from worldgen.render import Renderer


class SessionStore:
    """Sessions by id (Gradio's per-tab session hash), freed after `idle_seconds` without a request."""

    def __init__(self, gen: Generator, idle_seconds: float = 900.0, max_sessions: int = 32, per_client: int = 8,
                 planner=None):
        self.gen, self.idle, self.max, self.per_client = gen, idle_seconds, max_sessions, per_client
        self.planner = planner
        with GL_LOCK:
            self.renderer = Renderer(gen.config.resolution)
        self.sessions: dict[str, PlaySession] = {}
        self.lock = threading.Lock()
        self._seed = secrets.randbelow(1000) * 1000

    def next_seed(self) -> int:
        """A different world seed for every new tab."""
        with self.lock:
            self._seed += 1
            return self._seed

    def get(self, sid: str, client: str = "local") -> PlaySession:
        """The session `sid` of `client` (an address), made on first use. A client holds at most `per_client`
        sessions: a new one beyond that replaces its own least recently used, so one client inventing
        session names cannot take every slot."""
        self.sweep()
        evicted = None
        with self.lock:
            if sid not in self.sessions:
                mine = [k for k, s in self.sessions.items() if s.client == client]
                if len(mine) >= self.per_client:
                    evicted = self.sessions.pop(min(mine, key=lambda k: self.sessions[k].last_seen))
                elif len(self.sessions) >= self.max:
                    raise WorldgenError(f"the viewer is full ({self.max} players); try again later")
                self.sessions[sid] = PlaySession(self.gen, self.renderer, client, self.planner)
            s = self.sessions[sid]
            s.last_seen = time.monotonic()
        if evicted is not None:
            with evicted.lock:
                evicted.close()
        return s

    def by_token(self, token: str, client: str = "local") -> PlaySession:
        """The session a page's play loop names by its token; a token is bound to the client (address) whose
        session it is, so a token seen elsewhere neither reads nor drives that session."""
        with self.lock:
            found = next((s for s in self.sessions.values() if secrets.compare_digest(s.token, token)), None)
        if found is None or found.client != client:
            raise WorldgenError("this page's session has expired: reload the page")
        found.last_seen = time.monotonic()
        return found

    def drop(self, sid: str, client: str | None = None) -> None:
        """Free session `sid`; with `client`, only if it is that client's (a page leaving frees its own)."""
        with self.lock:
            if client is not None and sid in self.sessions and self.sessions[sid].client != client:
                return
            s = self.sessions.pop(sid, None)
        if s is not None:
            with s.lock:
                s.close()

    def sweep(self) -> None:
        now = time.monotonic()
        with self.lock:
            stale = [sid for sid, s in self.sessions.items() if now - s.last_seen > self.idle]
        for sid in stale:
            self.drop(sid)

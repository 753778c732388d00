"""`worldgen play`: open the viewer (registered through the worldgen.commands entry point)."""
from __future__ import annotations

import argparse


def _play(args):
    from viewer.app import launch
    if args.host not in ("127.0.0.1", "localhost"):
        print(f"warning: serving on {args.host}: anyone who can reach this address can play and upload")
    launch(args.model, args.host, args.port, latent=args.latent)


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("play", help="play a generated world in the browser (Gradio)")
    p.add_argument("--model", default="bundled", help="a model folder, or 'bundled'")
    p.add_argument("--latent", default="bundled",
                   help="latent model for 'walk to a remembered view': a folder, 'bundled' or 'none'")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--host", default="127.0.0.1", help="address to bind; other than localhost is opt-in")
    p.set_defaults(func=_play)

"""The `worldgen` command. Thin: parse, call the library, print. Other packages add subcommands
through the `worldgen.commands` entry-point group (a function that takes the subparsers object).
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import os
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

from worldgen.errors import WorldgenError
from worldgen.spec import WorldSpec


def parse_seeds(text: str) -> range:
    """'A:B' -> range(A, B); 'N' -> range(N, N+1)."""
    try:
        if ":" in text:
            a, b = (int(v) for v in text.split(":"))
        else:
            a = int(text)
            b = a + 1
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must look like A:B or N, got {text!r}") from None
    if not 0 <= a < b:
        raise argparse.ArgumentTypeError(f"seeds A:B need 0 <= A < B, got {text!r}")
    return range(a, b)


def add_spec_args(parser: argparse.ArgumentParser) -> None:
    """--spec FILE, --describe TEXT, and one --flag per WorldSpec field, so the spec stays the single source of
    truth."""
    group = parser.add_argument_group("world spec (see WorldSpec)")
    group.add_argument("--spec", dest="spec_file", type=Path, default=None, metavar="FILE",
                       help="a JSON object of WorldSpec fields (as `worldgen inspect` prints a recording's); "
                            "--describe and the flags below override its fields")
    group.add_argument("--describe", dest="spec_text", default=None, metavar="TEXT",
                       help="the world in words, e.g. 'snowy mountains with a dense forest at sunset' "
                            "(`worldgen describe --help` lists every word); the flags below override it")
    for f in dataclasses.fields(WorldSpec):
        flag = "--" + f.name.replace("_", "-")
        if isinstance(f.default, tuple):
            group.add_argument(flag, dest=f"spec_{f.name}", default=None, metavar="A,B,..",
                               help=f"comma-separated (default: {','.join(map(str, f.default)) or 'biome default'})")
        else:
            group.add_argument(flag, dest=f"spec_{f.name}", type=type(f.default), default=None,
                               help=f"default: {f.default}")


SPEC_FILE_LIMIT = 64 * 1024  # bytes: a spec is a few hundred


def read_spec_file(path: Path) -> WorldSpec:
    """The WorldSpec in a JSON file, or a WorldgenError naming the file and what is wrong with it."""
    if not path.is_file():
        raise WorldgenError(f"--spec {path}: " + ("it is a folder" if path.is_dir() else "no such file"))
    size = path.stat().st_size
    if size > SPEC_FILE_LIMIT:
        raise WorldgenError(f"--spec {path}: {size} bytes is not a world spec "
                            f"(a JSON object of WorldSpec fields, at most {SPEC_FILE_LIMIT} bytes)")
    try:
        return WorldSpec.from_json(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise WorldgenError(f"--spec {path}: not a text file (expected a JSON object of WorldSpec fields)") from None
    except WorldgenError as e:
        raise WorldgenError(f"--spec {path}: {e}") from None


def spec_from_args(args: argparse.Namespace) -> WorldSpec:
    """--spec's WorldSpec (else the default one), then what --describe says (what it understood goes to stderr),
    then the fields given as flags."""
    values = {}
    for f in dataclasses.fields(WorldSpec):
        v = getattr(args, f"spec_{f.name}", None)
        if v is None:
            continue
        if isinstance(f.default, tuple):
            items = [s.strip() for s in v.split(",") if s.strip()]
            try:
                v = tuple(float(s) for s in items) if f.name == "sky_color" else tuple(items)
            except ValueError:
                raise WorldgenError(f"--{f.name.replace('_', '-')} expects numbers like 0.5,0.7,0.9, "
                                    f"got {v!r}") from None
        values[f.name] = v
    file, text = getattr(args, "spec_file", None), getattr(args, "spec_text", None)
    base = read_spec_file(file) if file else WorldSpec()
    if text is not None:
        from worldgen.describe import describe
        described = describe(text, base)
        print(f"described: {described.summary()}", file=sys.stderr)
        base = described.spec
    return dataclasses.replace(base, **values)


def _cmd_view(args):
    from worldgen.preview import save_png, view_image
    path = save_png(view_image(args.seed, spec_from_args(args), args.resolution), args.out)
    print(f"wrote {path} (RGB | depth from the spawn point of world {args.seed})")


def _cmd_sheet(args):
    from worldgen.preview import contact_sheet, save_png
    path = save_png(contact_sheet(args.seeds, spec_from_args(args), args.resolution), args.out)
    print(f"wrote {path} ({len(args.seeds)} worlds)")


def _cmd_export(args):
    from worldgen.export import export_world
    from worldgen.world import World
    mesh = export_world(World(args.seed, spec_from_args(args)), args.out, args.format)
    lo, hi = mesh.bounds
    print(f"wrote {args.out}: {len(mesh.faces)} triangles, bounds {lo.round(2).tolist()} to {hi.round(2).tolist()}")


def _cmd_record(args):
    from worldgen.record import record
    t0 = time.time()
    summary = record(args.seeds, args.episodes_per_world, args.steps, args.resolution, args.out,
                     spec_from_args(args), workers=args.workers, vary=args.vary)
    print(summary.report())
    print(f"done in {time.time() - t0:.1f}s -> {args.out}")


def _cmd_import(args):
    from worldgen.importer import import_frames
    names = [n.strip() for n in args.action_names.split(",")] if args.action_names else None
    s = import_frames(args.frames, args.actions, args.out, args.resolution, args.steps, names)
    print(f"imported {s['episodes']} episode(s) with {s['num_actions']} actions into {len(s['shards'])} "
          f"shard(s) in {args.out}; dropped {s['dropped_frames']} trailing frame(s)")


def _cmd_inspect(args):
    from worldgen.dataset import EpisodeDataset
    from worldgen.record import stored_spec
    d = EpisodeDataset(args.data)
    heldout = sum(1 for s in d.seeds if s % 10 == 0)
    print(f"{args.data}: {len(d)} episodes x {d.steps} steps at {d.resolution}x{d.resolution}, "
          f"{d.num_actions} actions ({', '.join(d.action_names)}), geometry: {d.has_geometry}, "
          f"source: {d.meta['source']}, held-out episodes: {heldout}")
    if d.stale_depth:
        print(f"depth 0.4 pixel off its colours (recorded before the fix) in {len(d.stale_depth)} shards: "
              f"{', '.join(d.stale_depth[:4])}{' ...' if len(d.stale_depth) > 4 else ''}")
    stored = {name: stored_spec(m) for name, m in d.metas.items()}
    specs = {spec.to_json() for spec in stored.values() if spec is not None}
    if len(specs) == 1:  # recorded worlds: the spec to build them again (--spec FILE)
        print("world spec:", specs.pop())
    elif specs:  # `record --vary`: a spec per world
        print(f"{len(specs)} world specs (recorded with --vary), one line per world:")
        for name, m in d.metas.items():
            said = repr(m["description"]) if "description" in m else "(not described)"
            print(f"  {name}: {said} {stored[name].to_json()}")


def _cmd_bench(args):
    from worldgen.benchmarks import BENCHMARKS
    found = dict(BENCHMARKS, **{ep.name: ep.load() for ep in entry_points(group="worldgen.benchmarks")})
    if args.what not in found:
        raise WorldgenError(f"unknown benchmark {args.what!r}: expected one of {', '.join(found)}")
    bench = found[args.what]
    options = {k: v for k, v in (("model", args.model), ("screenshot", args.screenshot), ("follow", args.follow)) if v}
    takes = inspect.signature(bench).parameters
    for name in options:
        if name not in takes:
            raise WorldgenError(f"worldgen bench {args.what} takes no --{name}")
    print(bench(**options))


def _cmd_describe(args):
    from worldgen.describe import describe
    from worldgen.files import output_file, write_atomic
    if args.out:
        output_file(args.out)  # a path it cannot write is the one line said, before the summary
    described = describe(" ".join(args.text))
    text = described.spec.to_json()
    print(described.summary(), file=sys.stderr)
    if args.out:
        write_atomic(args.out, lambda tmp: tmp.write_text(text + "\n"))
        print(f"wrote {args.out} (use it with --spec {args.out})", file=sys.stderr)
    else:
        print(text)


def _cmd_demo(args):
    from worldgen.demo import run_demo
    path = run_demo(args.seed, spec_from_args(args), args.steps, args.out)
    print(f"wrote {path}: {args.steps} steps of an explorer in world {args.seed} (RGB | depth)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="worldgen", description="Procedural 3D worlds and world models.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("view", help="render the spawn view of a world (RGB | depth) to a PNG")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resolution", type=int, default=256)
    p.add_argument("--out", type=Path, default=Path("view.png"))
    add_spec_args(p)
    p.set_defaults(func=_cmd_view)

    p = sub.add_parser("sheet", help="contact sheet of many worlds' spawn views")
    p.add_argument("--seeds", type=parse_seeds, default=range(0, 16))
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--out", type=Path, default=Path("sheet.png"))
    add_spec_args(p)
    p.set_defaults(func=_cmd_sheet)

    p = sub.add_parser("export", help="export a world region as GLB, OBJ or PLY")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--format", choices=("glb", "obj", "ply"), default=None, help="default: from --out suffix")
    p.add_argument("--out", type=Path, required=True)
    add_spec_args(p)
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("record", help="record explorer episodes into a dataset folder (resumable)")
    p.add_argument("--seeds", type=parse_seeds, required=True, help="world seeds A:B")
    p.add_argument("--episodes-per-world", type=int, default=4)
    p.add_argument("--steps", type=int, default=64)
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1),
                   help="processes recording worlds side by side, each with its own renderer "
                        "(default: one per CPU core, at most 8)")
    p.add_argument("--vary", action="store_true",
                   help="each world its own random description, drawn from its seed, on top of the spec below "
                        "(`worldgen inspect` prints them); for training a model on more than one kind of world")
    add_spec_args(p)
    p.set_defaults(func=_cmd_record)

    p = sub.add_parser("import", help="turn a folder of frames + an actions file into a dataset")
    p.add_argument("--frames", type=Path, required=True)
    p.add_argument("--actions", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--steps", type=int, default=32, help="frames per episode")
    p.add_argument("--action-names", default=None, help="comma-separated names; default: action_0..")
    p.set_defaults(func=_cmd_import)

    p = sub.add_parser("inspect", help="validate a dataset folder and summarise it")
    p.add_argument("data", type=Path)
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser("bench", help="benchmarks that print a table: render, generate, train, viewer")
    p.add_argument("what", help="render | generate | train | viewer")
    p.add_argument("--model", default=None, help="generate, train, viewer: a model folder or 'bundled'")
    p.add_argument("--screenshot", default=None, help="viewer: save a screenshot of the page here")
    p.add_argument("--follow", action="store_true", help="viewer: tick 'follow the player' before holding W")
    p.set_defaults(func=_cmd_bench)

    from worldgen.describe import vocabulary
    p = sub.add_parser("describe", help="the world spec a few words describe, as JSON (for --spec FILE)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="the words it knows:\n" + vocabulary())
    p.add_argument("text", nargs="+", help="e.g. snowy mountains with a dense forest at sunset")
    p.add_argument("--out", type=Path, default=None, help="write the spec here (default: print it)")
    p.set_defaults(func=_cmd_describe)

    p = sub.add_parser("demo", help="walk an explorer through a world and save an animated GIF")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=120)
    p.add_argument("--out", type=Path, default=Path("worldgen-demo.gif"))
    add_spec_args(p)
    p.set_defaults(func=_cmd_demo)

    for ep in entry_points(group="worldgen.commands"):
        ep.load()(sub)
    return parser


COMPILE_CACHE = "WORLDGEN_COMPILE_CACHE"


def use_compile_cache() -> Path | None:
    """Keep what JAX compiles between runs (its persistent compilation cache), so that a second `worldgen play`
    starts in 16 s instead of 45 on a 2-core machine (9 of them importing Gradio). Programs that took 0.1 s or
    more to compile are kept: 1.2 MB for the viewer with the bundled model. $WORLDGEN_COMPILE_CACHE names the
    folder (default: worldgen/jax in $XDG_CACHE_HOME or ~/.cache) or is 'off'; a JAX_COMPILATION_CACHE_DIR
    already set is JAX's own and is left alone. A default folder that cannot be made means compiling every
    time, as without the cache."""
    choice = os.environ.get(COMPILE_CACHE, "").strip()
    if choice.lower() == "off" or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return None
    try:
        if choice:
            folder = Path(choice)
        else:  # Path.home() raises RuntimeError where there is no home directory
            folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "worldgen" / "jax"
        folder.mkdir(parents=True, exist_ok=True)
    except (OSError, RuntimeError) as e:
        if choice:
            raise WorldgenError(f"{COMPILE_CACHE}={choice}: cannot make that folder ({e}); "
                                f"name another or set it to 'off'") from None
        return None
    settings = {"jax_compilation_cache_dir": str(folder)}
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        settings["jax_persistent_cache_min_compile_time_secs"] = 0.1
    for name, value in settings.items():
        os.environ[name.upper()] = str(value)  # read when jax is imported, here and in worker processes
        if "jax" in sys.modules:  # imported already (main called from Python): tell it directly
            sys.modules["jax"].config.update(name, value)
    return folder


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        use_compile_cache()
        args.func(args)
    except WorldgenError as e:
        print(f"worldgen {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

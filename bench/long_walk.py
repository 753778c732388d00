"""Long-walk drift: the dream against the engine's rendered truth over 200 explorer steps in 24 (or N) unseen
worlds, per span: PSNR, copy-last PSNR, sharpness ratio, colour-histogram distance; and the revisit test.
The same figures as `worldgen eval` prints (training/long_walk.py); this runs only them.

    python bench/long_walk.py [MODEL] [STEPS] [SAMPLE_STEPS] [TEMPERATURE] [--walks N] [--palette-rows R]
        [--palette-prior S] [--palette-reach D] [--transient-near M] [--collide on|off]
        [--fill-behind on|off] [--fill-edge on|off] [--real-surfaces on|off] [--edge-share on|off]
        [--ground-within M] [--sky-above D] [--real-ground on|off] [--pyramid-levels L]
        [--hold ACTION] [--vary] [--follow] [--out DIR] [--against MODEL] [--seed S|A:B]
    # MODEL: a model folder or 'bundled' (default); SAMPLE_STEPS and TEMPERATURE override the model's sampler;
    # --walks N: walk N unseen worlds (1..64; default 24, as `worldgen eval`; fewer for a quick look)
    # --palette-rows R, --palette-prior S, --palette-reach D, --transient-near M, --collide, --fill-behind,
    # --fill-edge, --real-surfaces, --edge-share, --ground-within, --sky-above, --real-ground and --pyramid-levels
    # override ModelConfig.palette_rows, .palette_prior, .palette_reach, .transient_near (0: off), .collide,
    # .fill_behind, .fill_edge, .real_surfaces, .edge_share, .ground_within (0: off), .sky_above (0: off),
    # .real_ground and .pyramid_levels
    # --hold ACTION: after the explorer's 4 start frames the player holds ACTION (e.g. forward: a user holding W in
    # the viewer; the truth stops and slides at walls) instead of following the explorer
    # --vary: each world of its own random description, as `worldgen record --vary` draws them (a designer's worlds)
    # --follow: the dream is given the player's true camera at every step (the viewer's "follow the player"): only
    # the frames are dreamed (both models' with --against), which measures the painter and its memory alone
    # --out DIR also writes long_walk.json, long_walk.png and filmstrip.png there (e.g. docs/filmstrip_500.png)
    # --seed S or A:B: the dream's sampling key, or keys A..B-1 (default 0:3, as `worldgen eval`; both models' with
    # --against): each walk is dreamed with every key and the figures pool them. After step 50 the bundled model's
    # figures move by up to 0.16 dB from one key to another (docs/model.md, session 41)
    # --against MODEL: also dream the same walks with MODEL as saved (no flags applied), and print how MODEL (with
    # the flags) differs from it per span, in PSNR and sharpness, ± the jackknife standard error over walks, and in
    # how many walks it is nearer the truth (to tell a change from the spread of one walk; e.g. `bundled
    # --ground-within 0 --against bundled`)
"""
import argparse

from training.long_walk import KEYS, WALKS, check_walks, long_walk
from training.long_walk_report import paired_text, table_text, write_long_walk_report
from worldgen.actions import parse_action
from worldgen.errors import WorldgenError
from worldgen.model.runner import Generator
from worldgen.model.store import load_model
from worldgen.model import world_model as wm
from worldgen.model.world_model import with_options

# ModelConfig's inference rules, each a flag (the sampler's two are positional; memory is always shown)
RULES = tuple(rule for rule in wm.RULES if rule not in ("show_memory", "sample_steps", "sample_temperature"))


def parser() -> argparse.ArgumentParser:
    notes = "\n".join(line[6:] for line in __doc__.splitlines() if line.startswith("    # "))
    p = argparse.ArgumentParser(prog="python bench/long_walk.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=notes)
    p.add_argument("model", nargs="?", default="bundled", help="a model folder or 'bundled'")
    p.add_argument("steps", nargs="?", type=int, default=200, help="dreamed steps per walk (10..1000)")
    p.add_argument("sample_steps", nargs="?", default=None, help="override the model's sampling steps")
    p.add_argument("temperature", nargs="?", default=None, help="override the model's sampling temperature")
    p.add_argument("--walks", default=str(WALKS), help=f"unseen worlds to walk (default {WALKS})")
    p.add_argument("--hold", default=None, help="the action held after the start frames, e.g. forward")
    p.add_argument("--vary", action="store_true", help="each world of its own random description")
    p.add_argument("--follow", action="store_true", help="give the dream the player's camera at every step")
    p.add_argument("--out", default=None, help="also write long_walk.json, long_walk.png and filmstrip.png here")
    p.add_argument("--against", default=None, help="also dream the same walks with this model, and compare")
    p.add_argument("--seed", default=f"0:{KEYS}", help=f"sampling key S or keys A:B (default 0:{KEYS})")
    for rule in RULES:
        p.add_argument("--" + rule.replace("_", "-"), dest=rule, default=None, metavar="VALUE")
    return p


if __name__ == "__main__":
    args = parser().parse_intermixed_args()
    try:
        model = load_model(args.model)
    except WorldgenError as e:
        raise SystemExit(f"long_walk: {e}")
    given = {"sample_steps": args.sample_steps, "sample_temperature": args.temperature,  # strings: with_options
             **{rule: getattr(args, rule) for rule in RULES}}                          # converts each rule
    given = {rule: value for rule, value in given.items() if value is not None}
    switches = {rule for rule in given if isinstance(getattr(model.config, rule), bool)}  # the on/off ones
    for rule in switches:
        if given[rule] not in ("on", "off"):
            raise SystemExit(f"--{rule.replace('_', '-')} {given[rule]}: expected on or off")
    try:
        model = with_options(model, **{rule: value == "on" if rule in switches else value
                                       for rule, value in given.items()})
    except (WorldgenError, ValueError) as e:  # a value out of range, or not a number
        raise SystemExit(f"long_walk: {e}")
    try:
        hold = None if args.hold is None else parse_action(args.hold)
    except WorldgenError as e:
        raise SystemExit(f"--hold: {e}")
    try:
        first, _, end = args.seed.partition(":")
        seed, keys = int(first), (int(end) - int(first) if end else 1)
    except ValueError:
        raise SystemExit(f"--seed {args.seed}: expected a key S or keys A:B") from None
    try:  # the walks, steps and keys, before minutes of rendering
        check_walks(int(args.walks), args.steps, keys)
    except (WorldgenError, ValueError) as e:
        raise SystemExit(f"long_walk: {e} (--walks {args.walks}, steps {args.steps}, --seed {args.seed})")
    try:  # before the walks, so a wrong folder is said at once
        against = args.against and load_model(args.against)
    except WorldgenError as e:
        raise SystemExit(f"--against {args.against}: {e}")
    gen, base_gen = Generator(model), against and Generator(against)
    label = " ".join([args.model, *(v for v in (args.sample_steps, args.temperature) if v is not None)]
                     + ["--follow"] * args.follow
                     + [f"--{rule.replace('_', '-')} {getattr(args, rule)}" for rule in RULES
                        if getattr(args, rule) is not None])
    result, arrays = long_walk(gen, n_walks=int(args.walks), steps=args.steps, seed=seed, keys=keys, hold=hold,
                               vary=args.vary, follow=args.follow)
    print(table_text(result))
    if against:
        try:
            base, base_arrays = long_walk(base_gen, n_walks=int(args.walks), steps=args.steps, seed=seed, keys=keys,
                                          hold=hold, vary=args.vary, walks=arrays["walks"], follow=args.follow)
        except WorldgenError as e:  # another resolution or context
            raise SystemExit(f"--against {args.against}: {e}")
        print(table_text(base))
        print(paired_text(base, result, base_arrays["stats"], arrays["stats"], args.against, label))
    if args.out:
        print("wrote", ", ".join(str(p) for p in write_long_walk_report(result, arrays, args.out)))

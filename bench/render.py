"""Same as `worldgen bench render` (its flags too, e.g. --help)."""
import sys

from worldgen.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "render", *sys.argv[1:]]))

"""Same as `worldgen bench train` (its flags too, e.g. --help)."""
import sys

from worldgen.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "train", *sys.argv[1:]]))

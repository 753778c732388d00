"""Same as `worldgen bench viewer` (its flags too, e.g. --help)."""
import sys

from worldgen.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "viewer", *sys.argv[1:]]))

"""Same as `worldgen bench generate` (its flags too, e.g. --help)."""
import sys

from worldgen.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "generate", *sys.argv[1:]]))

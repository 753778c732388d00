"""Same as `worldgen bench generate`."""
from worldgen.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "generate"]))

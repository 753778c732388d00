"""Same as `worldgen bench train`."""
from worldgen.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "train"]))

"""Same as `worldgen bench render`."""
from worldgen.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "render"]))

"""Same as `worldgen bench viewer`."""
from worldgen.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "viewer"]))

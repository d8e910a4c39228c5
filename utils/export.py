"""`python -m utils.export`: the command lives in :mod:`utils.tools.export`."""
from utils.tools.export import main

if __name__ == "__main__":
    raise SystemExit(main())

"""`python -m utils.benchmark`: the command lives in :mod:`utils.tools.benchmark`."""
from utils.tools.benchmark import main

if __name__ == "__main__":
    raise SystemExit(main())

"""`python -m utils.serve`: the command lives in :mod:`utils.tools.serve`."""
from utils.tools.serve import main

if __name__ == "__main__":
    raise SystemExit(main())

"""`python -m utils.costs`: the command lives in :mod:`utils.tools.costs`."""
from utils.tools.costs import main

if __name__ == "__main__":
    raise SystemExit(main())

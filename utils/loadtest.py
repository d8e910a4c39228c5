"""`python -m utils.loadtest`: the command lives in :mod:`utils.tools.loadtest`."""
from utils.tools.loadtest import main

if __name__ == "__main__":
    raise SystemExit(main())

"""`python -m utils.editions`: the command lives in :mod:`utils.tools.editions`."""
from utils.tools.editions import main

if __name__ == "__main__":
    raise SystemExit(main())

"""`python -m utils.site`: the command lives in :mod:`utils.tools.site`."""
from utils.tools.site import main

if __name__ == "__main__":
    raise SystemExit(main())

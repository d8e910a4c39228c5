"""`python -m utils.rehearse`: the command lives in :mod:`utils.tools.rehearse`."""
from utils.tools.rehearse import main

if __name__ == "__main__":
    raise SystemExit(main())

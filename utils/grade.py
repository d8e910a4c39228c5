"""`python -m utils.grade`: the command lives in :mod:`utils.tools.grade`."""
from utils.tools.grade import main

if __name__ == "__main__":
    raise SystemExit(main())

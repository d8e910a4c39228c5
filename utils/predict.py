"""`python -m utils.predict`: the command lives in :mod:`utils.tools.predict`."""
from utils.tools.predict import main

if __name__ == "__main__":
    raise SystemExit(main())

"""`python -m utils.run_course`: the command lives in :mod:`utils.tools.run_course`."""
from utils.tools.run_course import main

if __name__ == "__main__":
    raise SystemExit(main())

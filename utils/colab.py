"""`python -m utils.colab`: the command lives in :mod:`utils.tools.colab`."""
from utils.tools.colab import main

if __name__ == "__main__":
    raise SystemExit(main())

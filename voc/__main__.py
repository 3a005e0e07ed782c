"""``python -m voc``: see ``voc.cli``."""

from voc.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

"""Train and evaluate timm backbones on PASCAL VOC under one protocol: ``python benchmark.py --help``."""

from bench.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

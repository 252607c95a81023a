"""Miner entry point: ``python neurons/miner.py [flags]`` (same flags as ``gauntlet miner``)."""

import sys

from gauntlet.cli import main

if __name__ == "__main__":
    sys.exit(main(["miner", *sys.argv[1:]]))

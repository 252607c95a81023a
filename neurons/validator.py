"""Validator entry point: ``python neurons/validator.py [flags]`` (same flags as ``gauntlet validator``)."""

import sys

from gauntlet.cli import main

if __name__ == "__main__":
    sys.exit(main(["validator", *sys.argv[1:]]))

"""Thin wrapper: `python scripts/embed.py ARGS` == `keras-rec embed ARGS`."""

import sys

from keras_rec.cli import main

if __name__ == "__main__":
    sys.exit(main(["embed", *sys.argv[1:]]))

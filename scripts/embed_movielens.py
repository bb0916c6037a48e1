"""Thin wrapper: `python scripts/embed_movielens.py ARGS` == `keras-rec embed-movielens ARGS`."""

import sys

from keras_rec.cli import main

if __name__ == "__main__":
    sys.exit(main(["embed-movielens", *sys.argv[1:]]))

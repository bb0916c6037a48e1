"""Thin wrapper: `python scripts/train_recommender.py ARGS` runs `keras-rec train-recommender`."""

import sys

from keras_rec.cli import main

if __name__ == "__main__":
    sys.exit(main(["train-recommender", *sys.argv[1:]]))

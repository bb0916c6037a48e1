"""Thin wrapper: `python scripts/train_classifier.py ARGS` == `keras-rec train-classifier ARGS`."""

import sys

from keras_rec.cli import main

if __name__ == "__main__":
    sys.exit(main(["train-classifier", *sys.argv[1:]]))

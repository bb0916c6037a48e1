"""The Keras parts of the recommender: towers, the two-tower model and its loss, the
ranker, the two-stage re-ranker, `RowEmbedding`, `IdDropout` and the `LazyAdam`
optimizer."""

"""The stages of `train_recommender`, in the order it runs them: inputs, towers,
validation (and refit), two_stage, baselines, ranker, evaluation, exports, report,
tracking. Each takes what it needs and returns a small result; `train_recommender.py`
chains them. `reranker_training` fits the re-ranker for `two_stage`."""

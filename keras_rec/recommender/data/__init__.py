"""What the recommender reads and learns from: interactions and their validation, id
tables, evaluation splits, each user's items, `RecommenderInputs` (the towers' tables)
and the ranker's sampled pairs."""

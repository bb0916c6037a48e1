"""Retrieval quality: per-user Recall/NDCG/MRR and top-K accuracy, evaluated a batch of
users at a time, in memory or as the exported `retrieval` model answers."""

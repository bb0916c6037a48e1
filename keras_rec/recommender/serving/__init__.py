"""The served `tf.Module`s: user id -> top-K (`UserRetrieval`), query text -> top-K
(`QueryRetrieval`), vector -> top-K (`VectorRetrieval`) and the re-ranked two-stage
model (`TwoStageRecommender`)."""

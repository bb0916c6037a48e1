"""The baselines every run is measured against: EASE and item-kNN (tuned on the
validation split) and TFRS's id-only two-tower model."""

"""Top-K over item vectors inside the served graph: exact (`BruteForceTopK`) or IVF
(k-means partitions, `IVFTopK`), `build_item_index` with its tuned `nprobe`, and the
`build-index` and `add-items` commands."""

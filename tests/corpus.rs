//! End-to-end runs of the `logveil` binary on real-world logs from the shared corpus.

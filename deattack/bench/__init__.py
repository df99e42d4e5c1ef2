"""Benchmarks: attack queries/s against the victim's raw forward limit (throughput,
timing) and against other tools at the same budget on the same weights (peers/)."""

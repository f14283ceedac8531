"""pytest-benchmark suite: every registered implementation x device x workload, plus GEMM/bandwidth peaks."""

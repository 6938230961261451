"""What the test suite and the benchmarks both need (the rest of the test helpers is in tests/support/)."""

"""The reliability tier: kill points, concurrent runs, store outages and tampering (issue 13)."""

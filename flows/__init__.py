"""Prefect flows: orchestration only (retries, caching, schedules); the work is in vigil.jobs."""

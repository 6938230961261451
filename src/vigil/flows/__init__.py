"""Prefect flows: orchestration only (retries, caching, timeouts, concurrency, schedules); the work is
in :mod:`vigil.jobs`.

Every flow takes either ``params_file`` (a top-level run: the parameters are loaded once and stored
as a snapshot) or ``params_ref`` (the snapshot's hash, handed down by the flow that started it), and
every task takes ``params_ref``: all steps of one run see the same parameters. The top-level
``flows/`` folder of the checkout holds the entrypoints Prefect deployments point at.
"""

"""Helpers the tests share: fault-injecting servers, media made on the fly, pacing checks, workspaces."""

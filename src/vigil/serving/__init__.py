"""Serving: an OpenAI-compatible chat server on loopback for a local model folder."""

from vigil.serving.openai_server import ServerInfo, ServerStartError, serve_openai

__all__ = ["ServerInfo", "ServerStartError", "serve_openai"]

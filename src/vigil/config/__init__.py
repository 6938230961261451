"""The ground floor: settings (where things live), parameters (what a run does) and error types.

Imports no other Vigil module, so every layer above may import it.
"""

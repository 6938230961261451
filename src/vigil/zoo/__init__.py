"""The synthetic generator zoo: real clips, generators with injected artifacts, and a gallery.

``scenes`` makes real clips, ``artifacts`` injects ground-truthed artifacts, ``generators`` names
the zoo's generators and their artifact mixes, ``catalog`` lists and renders items, ``gallery``
publishes them over HTTP. Import the submodules directly; this package imports nothing heavy.
"""

"""Crawled video in, probed facts and frame folders out, every bad input a MediaError.

Everything downstream sees a clip through two things made here: its probed facts
(:class:`~vigil.io.media.probing.MediaProbe`, :func:`~vigil.io.media.probing.probe`) and a frame
folder in Skyra's layout (:mod:`vigil.io.media.frame_folder`: ``1.png … N.png`` + ``timestamps.txt``,
written by ``sample_frames``, read by ``read_frames``). Underneath: :mod:`~vigil.io.media.container`
checks and opens the file, :mod:`~vigil.io.media.decode_plan` picks the frames and the cheaper decode
plan, :mod:`~vigil.io.media.decoding` runs it, :mod:`~vigil.io.media.perceptual_hash` hashes a clip
for near-duplicate checks, and :mod:`~vigil.io.media.errors` holds the one error they raise. Import
from the submodules; this package re-exports nothing.
"""

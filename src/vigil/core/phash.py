"""Perceptual hash of a video: find the same clip again after re-encoding, resizing or re-hosting.

Crawled sources re-upload each other's clips; exact sha256 identity misses those copies and a
duplicate that lands in both train and test splits inflates every metric. A video hash here is the
DCT pHash (64 bits) of a few frames taken at fixed *relative* positions (:data:`PHASH_POSITIONS`),
so it does not depend on frame rate, bitrate, size or container. It is a hex string of
``16 * len(PHASH_POSITIONS)`` characters: one 16-hex-digit frame hash after another.

Pure numpy; decoding the frames is :func:`vigil.io.media.perceptual_hash.video_phash`'s job.

>>> y, x = np.mgrid[0:90, 0:160]
>>> scene = np.sin(x / 9.0) * np.cos(y / 13.0) + x / 80.0    # a smooth, structured image
>>> h = frame_phash(scene)
>>> len(h), hamming(h, frame_phash(scene[::2, ::2])) <= 2    # half-size copy: (nearly) same hash
(16, True)
>>> hamming(h, frame_phash(scene[:, ::-1])) > 16             # a mirrored image is far away
True
"""

from __future__ import annotations

import numpy as np

#: Relative positions in the clip (0 = start, 1 = end) of the frames that are hashed. Away from
#: the ends, where fades, logos and black frames make unrelated clips look alike.
PHASH_POSITIONS: tuple[float, ...] = (0.2, 0.5, 0.8)

#: Mean per-frame Hamming distance (of 64 bits) under which two clips count as the same content.
#: Re-encodes and resizes of the same clip measure 0-6; unrelated clips measure around 32.
DEFAULT_MAX_DISTANCE = 10

_HASH_SIDE = 8  # 8x8 low-frequency DCT coefficients -> 64 bits
_DCT_INPUT_SIDE = 32
_FRAME_HEX = _HASH_SIDE * _HASH_SIDE // 4


def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II basis, so ``D @ X @ D.T`` is the 2-D DCT without scipy."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    basis = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    basis[0] /= np.sqrt(2.0)
    return basis


_DCT = _dct_matrix(_DCT_INPUT_SIDE)


def to_gray(frame: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 3) array -> float (H, W) luma (BT.601 weights, as the decoder's own)."""
    frame = np.asarray(frame, dtype=np.float64)
    if frame.ndim == 3:
        frame = frame[..., :3] @ np.array([0.299, 0.587, 0.114])
    if frame.ndim != 2:
        raise ValueError(f"expected an (H, W) or (H, W, 3) frame, got shape {frame.shape}")
    return frame


def area_resize(gray: np.ndarray, side: int) -> np.ndarray:
    """Box-filter ``gray`` to ``side x side``: every source pixel counts, so resizing is stable.

    >>> area_resize(np.arange(16.0).reshape(4, 4), 2).tolist()
    [[2.5, 4.5], [10.5, 12.5]]
    """
    h, w = gray.shape
    if h < 1 or w < 1:
        raise ValueError("cannot hash an empty frame")
    return _area_weights(h, side) @ gray @ _area_weights(w, side).T


def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix averaging the source samples that overlap each output cell."""
    edges = np.linspace(0.0, n_in, n_out + 1)
    left = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(edges[1:, None], left + 1) - np.maximum(edges[:-1, None], left), 0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def frame_phash(frame: np.ndarray) -> str:
    """64-bit DCT pHash of one frame as 16 hex digits: bit set where a low-frequency DCT
    coefficient is above the median of the 63 non-DC ones (the DC term only says brightness)."""
    small = area_resize(to_gray(frame), _DCT_INPUT_SIDE)
    coefficients = (_DCT @ small @ _DCT.T)[:_HASH_SIDE, :_HASH_SIDE].ravel()
    bits = coefficients > np.median(coefficients[1:])
    return f"{int(''.join('1' if bit else '0' for bit in bits), 2):0{_FRAME_HEX}x}"


def video_phash_from_frames(frames: list[np.ndarray] | tuple[np.ndarray, ...]) -> str:
    """Concatenate the frame hashes of frames taken at :data:`PHASH_POSITIONS`, in that order."""
    if not frames:
        raise ValueError("a video hash needs at least one frame")
    return "".join(frame_phash(frame) for frame in frames)


def _frame_hashes(video_hash: str) -> list[int]:
    if not video_hash or len(video_hash) % _FRAME_HEX:
        raise ValueError(f"not a video phash (a multiple of {_FRAME_HEX} hex digits): {video_hash!r}")
    return [int(video_hash[i : i + _FRAME_HEX], 16) for i in range(0, len(video_hash), _FRAME_HEX)]


def hamming(a: str, b: str) -> int:
    """Number of differing bits between two hashes of the same length (frame or video).

    >>> hamming("00000000000000ff", "000000000000000f")
    4
    """
    if len(a) != len(b):
        raise ValueError(f"hashes differ in length: {len(a)} vs {len(b)}")
    return int(bin(int(a, 16) ^ int(b, 16)).count("1"))


def video_distance(a: str, b: str) -> float:
    """Mean per-frame Hamming distance (0-64) between two video hashes made with the same positions.

    >>> video_distance("0" * 32, "0" * 16 + "f" * 16)
    32.0
    """
    frames_a, frames_b = _frame_hashes(a), _frame_hashes(b)
    if len(frames_a) != len(frames_b):
        raise ValueError(f"video hashes cover different frame counts: {len(frames_a)} vs {len(frames_b)}")
    return float(np.mean([bin(x ^ y).count("1") for x, y in zip(frames_a, frames_b)]))


def is_near_duplicate(a: str, b: str, max_distance: float = DEFAULT_MAX_DISTANCE) -> bool:
    """True when two video hashes are within ``max_distance`` mean bits per frame.

    >>> is_near_duplicate("0" * 48, "0" * 47 + "7")
    True
    """
    return video_distance(a, b) <= max_distance

"""The one place where Vigil works around torchvision on CPU-only machines.

Why this exists
---------------
PyPI's torchvision wheels are CUDA builds. With the CPU build of torch (what these machines, CI and
the tests use), torchvision's C++ extension (``torchvision/_C.so``) cannot load, so its ops
(``torchvision::nms``, ``roi_align``, ...) are never registered. torchvision tolerates that for most
ops, but ``torchvision/_meta_registrations.py`` registers fake kernels for ``torchvision::nms`` and
``torchvision::qnms`` unconditionally, and ``import torchvision`` dies with::

    RuntimeError: operator torchvision::nms does not exist

Transformers imports torchvision whenever it is installed (for its "torchvision" image/video
processor backends, e.g. ``Qwen2VLVideoProcessor``), and so does vLLM's Qwen2-VL code, so a merely
installed CUDA torchvision breaks every processor.

What we do
----------
* Where torchvision is not installed, this function is a no-op (text-only models and PIL image
  processors work; Qwen2.5-VL's ``AutoProcessor`` will not, see below).
* Where torchvision is installed and its extension loads (GPU machines with CUDA torch), this
  function is a no-op too.
* Where it is installed but its extensions cannot load (CUDA torchvision + CPU torch), two things
  break and we mend both, before torchvision is imported:

  1. the import itself: we define the two op *schemas* it needs (no kernels). The pure-PyTorch
     transforms that processors use then work; calling ``nms`` itself would still fail loudly
     ("no kernel"), which nothing in Vigil does;
  2. image decoding: ``torchvision.io.decode_image`` lives in the same CUDA-linked extension
     (``image.so``), and transformers' torchvision image backend uses it to load every image given
     as a URL, path or base64 data URI (``load_image_as_tensor``), which is how an OpenAI-style
     server receives images. We swap in a PIL decoder with the same contract (uint8 ``[C, H, W]``).

Why torchvision is installed at all on CPU machines: transformers 5.x needs it for Qwen2.5-VL's
*video* processor, and ``AutoProcessor.from_pretrained`` refuses to build the processor without one
("requires `torchvision` to be installed"), even when only images are used. The image processor
would also work with PIL alone. vLLM's Qwen2-VL code needs torchvision too.

Call :func:`ensure_transformers_compat` before transformers' processors or models are used (the
model builder and the server do). It is idempotent and cheap.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from typing import Literal

__all__ = ["TorchvisionState", "ensure_transformers_compat"]

TorchvisionState = Literal["absent", "imported", "ok", "patched"]

# Schemas as torchvision's C++ code defines them (torchvision/csrc/ops/nms.cpp).
_MISSING_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_state: TorchvisionState | None = None
_library = None  # keeps the torch.library fragment (and so the schemas) alive


def _op_exists(qualname: str) -> bool:
    import torch

    try:
        torch._C._dispatch_find_schema_or_throw(qualname, "")
    except RuntimeError:
        return False
    return True


def _extension_loads(package_dir: Path) -> bool:
    """Load torchvision's C++ extension the way torchvision does; True when its ops registered."""
    import torch

    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = package_dir / f"_C{suffix}"
        if path.exists():
            try:
                torch.ops.load_library(str(path))
            except (ImportError, OSError):
                return False
            return _op_exists("torchvision::nms")
    return False


def _pil_decode_image(input, mode=None, apply_exif_orientation: bool = False):  # noqa: A002
    """``torchvision.io.decode_image`` done with PIL: encoded bytes (1-D uint8 tensor) or a path
    in, a uint8 ``[C, H, W]`` tensor out. ``mode`` is a ``torchvision.io.ImageReadMode``."""
    import io

    import numpy as np
    import torch
    from PIL import Image, ImageOps

    if isinstance(input, torch.Tensor):
        image = Image.open(io.BytesIO(input.numpy().tobytes()))
    else:
        image = Image.open(input)
    image.load()
    if apply_exif_orientation:
        image = ImageOps.exif_transpose(image)
    name = getattr(mode, "name", str(mode or "UNCHANGED")).upper()
    target = {"RGB": "RGB", "GRAY": "L", "GRAY_ALPHA": "LA", "RGB_ALPHA": "RGBA"}.get(name)
    if target is not None and image.mode != target:
        image = image.convert(target)
    elif target is None and image.mode not in ("L", "LA", "RGB", "RGBA"):
        image = image.convert("RGB")
    array = np.array(image, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def _patch_torchvision() -> None:
    """Define the missing op schemas, then route image decoding through PIL."""
    global _library
    import torch.library

    _library = torch.library.Library("torchvision", "FRAGMENT")  # noqa: TOR901
    for name, schema in _MISSING_SCHEMAS.items():
        if not _op_exists(f"torchvision::{name}"):
            _library.define(schema)

    import torchvision.io
    import torchvision.io.image

    torchvision.io.decode_image = _pil_decode_image
    torchvision.io.image.decode_image = _pil_decode_image
    # transformers binds the name at import; mend a copy that was imported before us.
    image_utils = sys.modules.get("transformers.image_utils")
    if image_utils is not None and hasattr(image_utils, "decode_image"):
        image_utils.decode_image = _pil_decode_image


def ensure_transformers_compat() -> TorchvisionState:
    """Make ``import torchvision`` (and so transformers' processors) work with CPU torch.

    Returns what was found: ``"absent"`` (torchvision not installed; transformers uses its PIL
    backends), ``"imported"`` (already imported fine), ``"ok"`` (its extension loads: GPU machines)
    or ``"patched"`` (op schemas defined so the import succeeds; image decoding goes through PIL).
    """
    global _state
    if _state is not None:
        return _state
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        _state = "absent"
    elif "torchvision" in sys.modules:
        _state = "imported"
    elif _extension_loads(Path(next(iter(spec.submodule_search_locations)))):
        _state = "ok"
    else:
        _patch_torchvision()
        _state = "patched"
    return _state

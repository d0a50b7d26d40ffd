"""DeepLIIF's generators, loaded from the `deepliif` package without the rest of it.

`deepliif.models` and `deepliif.util` import, at their top, the package's whole-slide I/O stack
(python-bioformats and javabridge, which need Java; dask, zarr, imagecodecs; the pinned
torch 2.8 and numba), none of which a 512x512 tile's inference uses. This module imports only
`deepliif/models/networks.py` (with `att_unet.py` and `util/util.py` beside it, which need torch,
numpy, Pillow, OpenCV and scikit-image): the package folders are registered as bare packages so
their heavy `__init__` modules do not run. `networks.py` imports torchvision at its top for a
training loss (VGG19); torchvision is not needed to run the generators, so where it is missing a
placeholder stands in that refuses to be used.
"""

import importlib
import importlib.util
import os
import sys
import types


def _bare_package(name, path):
    if name not in sys.modules:
        module = types.ModuleType(name)
        module.__path__ = [path]
        sys.modules[name] = module


def _torchvision_placeholder():
    try:
        import torchvision  # noqa: F401
    except Exception:  # not installed, or built for another torch ("torchvision::nms does not exist")
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        placeholder = types.ModuleType("torchvision")

        class _Refuse(types.ModuleType):
            def __getattr__(self, attr):  # AttributeError, so hasattr() and inspect still work
                raise AttributeError(f"torchvision.models.{attr}: torchvision is not usable in this runtime")

        placeholder.models = _Refuse("torchvision.models")
        sys.modules["torchvision"] = placeholder
        sys.modules["torchvision.models"] = placeholder.models


def load():
    """The `deepliif.models.networks` module (define_G, ResnetGenerator, UnetGenerator, ...)."""
    spec = importlib.util.find_spec("deepliif")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "the deepliif package is not installed in this runtime (see tools/make_deepliif_runtime.sh)"
        )
    root = list(spec.submodule_search_locations)[0]
    _bare_package("deepliif", root)
    _bare_package("deepliif.models", os.path.join(root, "models"))
    _bare_package("deepliif.util", os.path.join(root, "util"))
    _torchvision_placeholder()
    return importlib.import_module("deepliif.models.networks")

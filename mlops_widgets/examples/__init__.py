"""The bundled example: a small segmentation model, its EDI deployment folder and its config.

Used by the demo, the templates' defaults, the tests and the README.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent
MODEL = HERE / "model"
DEPLOYMENT = HERE / "deployment"
DEEPLIIF = HERE / "deepliif_kernel"  # the DeepLIIF network's kernel folder and entry
# The same model served by a kernel in the style of the original team's DeepLIIF kernel (it uses
# the helper modules, downloads the model from the space and works on the storage volume).
ORIGINAL_KERNEL = HERE / "original_kernel"
CONFIG = HERE / "deployment_metadata.yml"
TILES = HERE / "tiles"  # three small synthetic IHC tiles (see synthetic.py) to score
SYNTHETIC = HERE / "synthetic.py"  # the synthetic tiles' generator (the training example uses it)
TRAINING = HERE / "training"  # a training script learning the example model from tiles (template A1)

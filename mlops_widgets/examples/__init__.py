"""The bundled example: a small segmentation model, its EDI deployment folder and its config.

Used by the demo, the templates' defaults, the tests and the README.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent
MODEL = HERE / "model"
DEPLOYMENT = HERE / "deployment"
CONFIG = HERE / "deployment_metadata.yml"
TILES = HERE / "tiles"  # three small synthetic IHC tiles (see synthetic.py) to score

# NOT upstream: stands in for the bundled timm 0.3.2's timm/models/layers/__init__.py (which imports
# ~30 layer modules) and exports only the three names that vision_transformer.py and models_deit.py
# import from it, from the vendored upstream files next to this one.
from .drop import DropPath
from .helpers import to_2tuple
from .weight_init import trunc_normal_

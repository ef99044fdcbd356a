"""hyperdas_tl: HyperDAS on TransformerLens.

The pieces other code imports most:

- :func:`hyperdas_tl.models.load_model`: a target model as a TransformerLens bridge.
- :mod:`hyperdas_tl.interchange`: the interchange maths as pure tensor functions.
- :mod:`hyperdas_tl.hooks`: ``blocks.{L}.hook_resid_pre`` hooks built from that maths.
"""

from hyperdas_tl.hooks import (
    capture_resid_pre,
    interchange_hook,
    interchange_hook_for,
    resid_pre_name,
    soft_interchange_hook,
    soft_interchange_hook_for,
)
from hyperdas_tl.interchange import (
    interchange,
    mix_source,
    one_hot_selection,
    positions_to_selection,
    soft_interchange,
)
from hyperdas_tl.models import load_model, tiny_llama_config

__version__ = "0.1.0"

__all__ = [
    "capture_resid_pre",
    "interchange",
    "interchange_hook",
    "interchange_hook_for",
    "load_model",
    "mix_source",
    "one_hot_selection",
    "positions_to_selection",
    "resid_pre_name",
    "soft_interchange",
    "soft_interchange_hook",
    "soft_interchange_hook_for",
    "tiny_llama_config",
]

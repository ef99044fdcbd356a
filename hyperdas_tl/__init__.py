"""hyperdas_tl: HyperDAS on TransformerLens.

The pieces other code imports most:

- :func:`hyperdas_tl.models.load_model`: a target model as a TransformerLens bridge.
- :mod:`hyperdas_tl.interchange`: the interchange maths as pure tensor functions.
- :mod:`hyperdas_tl.hooks`: ``blocks.{L}.hook_resid_pre`` hooks built from that maths.
- The main classes: :class:`~hyperdas_tl.hyperdas.HyperDAS` (+ ``HyperDASConfig``,
  ``train_hyperdas``), the data (``DataConfig``, ``build_experiment_data``), the baselines
  (``DASConfig``, ``train_das``), scoring (``EvalConfig``, ``evaluate``) and the comparison
  (``CompareSettings``, ``compare_methods``); ``TargetModel`` types the frozen target.

The names below are imported on first use, so ``import hyperdas_tl`` (and the CLI's
``--help`` and option errors) costs no torch import.
"""

import sys
import types
from typing import Any

from hyperdas_tl.lazy_exports import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "capture_resid_pre": "hyperdas_tl.hooks",
    "interchange_hook": "hyperdas_tl.hooks",
    "interchange_hook_for": "hyperdas_tl.hooks",
    "resid_pre_name": "hyperdas_tl.hooks",
    "soft_interchange_hook": "hyperdas_tl.hooks",
    "soft_interchange_hook_for": "hyperdas_tl.hooks",
    "interchange": "hyperdas_tl.interchange",
    "mix_source": "hyperdas_tl.interchange",
    "one_hot_selection": "hyperdas_tl.interchange",
    "positions_to_selection": "hyperdas_tl.interchange",
    "soft_interchange": "hyperdas_tl.interchange",
    "load_model": "hyperdas_tl.models",
    "tiny_llama_config": "hyperdas_tl.models",
    "TargetModel": "hyperdas_tl.target",
    "DataConfig": "hyperdas_tl.experiment",
    "build_experiment_data": "hyperdas_tl.experiment",
    "HyperDAS": "hyperdas_tl.hyperdas",
    "HyperDASConfig": "hyperdas_tl.hyperdas",
    "train_hyperdas": "hyperdas_tl.hyperdas",
    "DASConfig": "hyperdas_tl.baselines",
    "train_das": "hyperdas_tl.baselines",
    "EvalConfig": "hyperdas_tl.metrics",
    "evaluate": "hyperdas_tl.metrics",
    "CompareSettings": "hyperdas_tl.compare",
    "compare_methods": "hyperdas_tl.compare",
}

__all__ = sorted(_EXPORTS)


_export, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


class _Package(types.ModuleType):
    """``hyperdas_tl.interchange`` is the exported *function* (as it was when the names were
    imported eagerly), even after the submodule of the same name has been imported."""

    def __getattribute__(self, name: str) -> Any:
        if name == "interchange":
            return _export(name)
        return super().__getattribute__(name)


sys.modules[__name__].__class__ = _Package

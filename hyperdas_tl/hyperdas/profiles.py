"""The named sizes of a HyperDAS run (:data:`PROFILES`: ``quick``, ``small``, ``full``).
Torch-free: the command line takes its defaults from the chosen profile before anything heavy
is imported. :mod:`hyperdas_tl.hyperdas.run` runs them.
"""

from dataclasses import dataclass

from hyperdas_tl.choices import JUDGE_MODES, JudgeMode, Precision
from hyperdas_tl.data_config import DataConfig
from hyperdas_tl.hyperdas.config import HyperDASConfig


@dataclass
class Profile:
    """A named size of run."""

    data: DataConfig
    hyperdas: HyperDASConfig
    eval_modes: tuple[JudgeMode, ...] = JUDGE_MODES
    max_new_tokens: int = 6
    """Generation judging: tokens generated per prompt (the label must fit)."""
    precision: Precision = "auto"
    """Dtype of the frozen target (:mod:`hyperdas_tl.precision`): ``"auto"`` = bfloat16 where
    the hardware has native bf16 (AMX / AVX512-BF16 CPUs, bf16 GPUs), else float32; what is
    trained keeps float32 master weights either way."""

    def eval_config(self, show_progress: bool = True):  # -> metrics.EvalConfig (imports torch)
        """How the test splits are scored."""
        from hyperdas_tl.metrics import EvalConfig

        return EvalConfig(
            modes=self.eval_modes,
            max_new_tokens=self.max_new_tokens,
            show_progress=show_progress,
        )


PROFILES: dict[str, Profile] = {
    # a few minutes on 2 CPU cores: the demo and the notebooks' CI profile
    "quick": Profile(
        DataConfig(max_entities=60, max_templates=4, train_pairs=96, eval_pairs=16, batch_size=8,
                   instance_attributes=("Country", "Continent", "Language")),
        HyperDASConfig.build(layer=10, n_hypernet_layers=4, n_steps=40, lr=3e-4, eval_every=20),
    ),
    # tens of minutes on 2 CPU cores
    "small": Profile(
        DataConfig(train_pairs=512, eval_pairs=128, batch_size=16),
        HyperDASConfig.build(layer=10, n_hypernet_layers=8, n_steps=400, lr=2e-4, eval_every=50),
    ),
    # RAVEL-sized caps; wants a GPU
    "full": Profile(
        DataConfig(max_entities=400, max_templates=12, train_pairs=4000, eval_pairs=500,
                   batch_size=32),
        HyperDASConfig.build(layer=10, n_hypernet_layers=8, n_steps=3000, lr=1e-4,
                             eval_every=200),
    ),
}  # fmt: skip

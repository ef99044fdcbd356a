"""What one benchmark run measures (:class:`BenchSettings`) and the machine it ran on."""

import os
import platform
from dataclasses import asdict, dataclass
from typing import Any

import torch

from hyperdas_tl.models import SMOLLM2_NAME
from hyperdas_tl.provenance import cpu_flags, cpu_model


@dataclass
class BenchSettings:
    """Sizes and repetitions of one benchmark run."""

    model: str = SMOLLM2_NAME
    """Target model (``load_model`` name)."""
    batch: int = 8
    """Examples per batch."""
    seq: int = 32
    """Base and source positions (prompt + label tokens)."""
    concept_len: int = 8
    """Concept tokens (HyperDAS)."""
    n_label: int = 3
    """Label tokens at the end of each base row."""
    layer: int | None = None
    """Intervention layer (None: ``n_layers // 2``, HyperDAS's default)."""
    k: int | None = None
    """Subspace rank (None: HyperDAS's ``default_k``; 18 for SmolLM2)."""
    n_hypernet_layers: int = 8
    """HyperDAS hypernetwork blocks."""
    repeats: int = 5
    """Timed repetitions per variant (after one warm-up)."""
    hook_repeats: int = 10
    """Repetitions of the hook-overhead section (cheap no-grad forwards, a 3 % goal)."""
    gen_tokens: int = 3
    """New tokens in the generation-mode throughput."""
    scaling_batches: tuple[int, ...] = (4, 8, 16)
    """Batch sizes of the scaling table (at ``seq``)."""
    scaling_seqs: tuple[int, ...] = (16, 32, 64)
    """Sequence lengths of the scaling table (at ``batch``)."""
    scaling_repeats: int = 3
    """Repetitions per cell of the scaling table."""
    memory_steps: int = 2
    """Training steps measured per memory probe (after one warm-up step)."""
    threads: int = 1
    """``torch.set_num_threads``."""
    seed: int = 0
    """Seed of the synthetic batches and of the HyperDAS / DAS initialisation."""

    def __post_init__(self) -> None:
        if self.seq < self.n_label + 2:
            raise ValueError(f"seq={self.seq} must leave a prompt before {self.n_label} labels")
        for name in (
            "batch",
            "repeats",
            "hook_repeats",
            "scaling_repeats",
            "memory_steps",
            "threads",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def machine_info(settings: BenchSettings) -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu": cpu_model(),
        "bf16_cpu_flags": cpu_flags(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "requested_threads": settings.threads,
        "loadavg_start": list(os.getloadavg()),
    }

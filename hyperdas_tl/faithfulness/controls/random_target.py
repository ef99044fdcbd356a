"""Random target: the same HyperDAS (same config, same steps) trained against a random-init copy
of the target (same architecture and tokenizer, no knowledge); its Cause must stay far below the
real model's."""

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from hyperdas_tl.data.batching import InterventionBatch
from hyperdas_tl.faithfulness.checks import check_batches
from hyperdas_tl.faithfulness.result_dict import NOT_IN_DICT, ResultDict
from hyperdas_tl.faithfulness.scoring import (
    Score,
    majority_label_rate,
    score_hyperdas,
    teacher_forced_result,
)
from hyperdas_tl.hyperdas.config import SelectionMode, check_selection_mode
from hyperdas_tl.hyperdas.model import HyperDAS
from hyperdas_tl.hyperdas.train import train_hyperdas
from hyperdas_tl.metrics import EvalResult, Judgement, batch_judgements, teacher_forced_correct
from hyperdas_tl.models import module_device
from hyperdas_tl.target import TargetModel

HypernetworkInit = Literal["real", "random"]


def random_init_copy(target: TargetModel, *, seed: int = 0) -> Any:
    """A random-init copy of ``target``: the same HF architecture and config (``LlamaForCausalLM``
    at the target's sizes, seeded) and the same tokenizer, booted as a frozen bridge."""
    from transformers import AutoModelForCausalLM

    from hyperdas_tl.models import boot_bridge

    original = getattr(target, "original_model", None)
    if original is None or getattr(original, "config", None) is None:
        raise ValueError("target must be a TransformerBridge wrapping an HF model")
    parameter = next(target.parameters())
    config = copy.deepcopy(original.config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        hf_model = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    hf_model = hf_model.to(device=parameter.device, dtype=parameter.dtype).eval()
    bridge = boot_bridge(
        f"random-init-{config.model_type}",
        hf_model,
        target.tokenizer,
        device=parameter.device,
        dtype=parameter.dtype,
    )
    for p in bridge.parameters():
        p.requires_grad_(False)
    return bridge


@dataclass
class RandomTargetResult(ResultDict):
    """HyperDAS trained against a random-init copy of the target."""

    seed: int
    n_steps: int
    hypernetwork_init: str
    """``"real"``: the hypernetwork starts from the real target's blocks (as the audited HyperDAS
    did), so only the target's knowledge is removed; ``"random"``: from the random copy's."""
    real: Score
    """The audited HyperDAS on the real target (same examples, same read-out)."""
    random_target: Score
    """The HyperDAS trained on the random target, scored on it."""
    random_target_clean: Score
    """The random target without intervention (its own outputs vs the labels)."""
    loss: list[float] = field(default_factory=list, metadata=NOT_IN_DICT)
    """Training loss per step of the random-target run (``to_dict`` keeps its first and last
    tenths, ``loss_first`` / ``loss_last``)."""
    selection_mode: str = "soft"
    majority_label_rate: float = 0.0
    """Cause of the best constant answer on the test examples (:func:`majority_label_rate`): a
    hypernetwork can learn to make any target say the most frequent label."""

    def to_dict(self) -> dict[str, Any]:
        tenth = max(1, len(self.loss) // 10)
        return super().to_dict() | {
            "loss_first": self.loss[:tenth],
            "loss_last": self.loss[-tenth:],
        }


def random_target_control(
    hyperdas: HyperDAS,
    train_batches: Sequence[InterventionBatch],
    test_batches: Sequence[InterventionBatch],
    *,
    seed: int = 0,
    n_steps: int | None = None,
    hypernetwork_init: HypernetworkInit = "real",
    selection_mode: SelectionMode = "soft",
    reference: EvalResult | None = None,
    show_progress: bool = False,
    max_label_tokens: int = 3,
) -> RandomTargetResult:
    """Train a HyperDAS with ``hyperdas.config`` (``n_steps`` overrides its steps) against
    :func:`random_init_copy` of the target, then score it on ``test_batches`` (expect a Cause far
    below the real model's: a target that knows nothing cannot be made to say the label unless
    the hypernetwork injects it)."""
    check_selection_mode(selection_mode)
    check_batches(train_batches)
    check_batches(test_batches, need_examples=True)
    if hypernetwork_init not in ("real", "random"):
        raise ValueError(f"hypernetwork_init must be 'real' or 'random', got {hypernetwork_init!r}")
    # the control keeps no checkpoints of its own
    config = hyperdas.config.with_fields(checkpoint_every=None)
    config = config if n_steps is None else config.with_fields(n_steps=n_steps)
    random_target = random_init_copy(hyperdas.target, seed=seed)
    model = HyperDAS(random_target, config)
    if hypernetwork_init == "real":
        # same seed, same shapes: selection and subspace start as the audited model's did
        model.hypernetwork = HyperDAS(hyperdas.target, config).hypernetwork
    device = module_device(hyperdas.target)
    train = train_hyperdas(
        model, [b.to(device) for b in train_batches], show_progress=show_progress
    )
    control = score_hyperdas(
        model, test_batches, selection_mode, method="HyperDAS on a random target",
        max_label_tokens=max_label_tokens,
    )  # fmt: skip
    judgements: list[Judgement] = []
    with torch.no_grad():
        for batch in test_batches:
            batch = batch.to(device)
            logits = random_target(batch.base_ids, attention_mask=batch.base_attention_mask)
            correct = teacher_forced_correct(logits, batch.labels, max_label_tokens)
            judgements.extend(batch_judgements(batch, "teacher_forced", correct))
    clean = teacher_forced_result("random target, no intervention", judgements)
    if reference is None:
        reference = score_hyperdas(
            hyperdas, test_batches, selection_mode, max_label_tokens=max_label_tokens
        )
    return RandomTargetResult(
        seed=seed,
        n_steps=config.training.n_steps,
        hypernetwork_init=hypernetwork_init,
        real=Score.of(reference),
        random_target=Score.of(control),
        random_target_clean=Score.of(clean),
        loss=[record.loss for record in train.history],
        selection_mode=selection_mode,
        majority_label_rate=majority_label_rate(test_batches),
    )

"""The smallest end-to-end use of the hooks: patch one entity's residual into another prompt.

Base "The city of Paris is in the country of" answers " France". Interchanging the *whole*
residual stream (k = d_model) at the last token of "Paris" with the one at "Tokyo" from the
source prompt makes the model answer " Japan"; a random k-dimensional subspace at the same
position does not. HyperDAS and DAS exist to find the small subspace that does.
"""

from dataclasses import asdict, dataclass

import torch

from hyperdas_tl.data.batching import entity_token_positions
from hyperdas_tl.hooks import capture_resid_pre, soft_interchange_hook_for
from hyperdas_tl.interchange import one_hot_selection


@dataclass
class EntitySwapResult:
    """Next-token predictions of the base prompt under three interventions."""

    layer: int
    base_prompt: str
    source_prompt: str
    base_prediction: str
    """Unpatched base run."""
    source_prediction: str
    """Unpatched source run."""
    full_patch_prediction: str
    """Whole residual (k = d_model) interchanged at the entity's last token."""
    full_patch_source_prob: float
    """Probability of ``source_prediction`` after the full patch."""
    random_patch_prediction: str
    """A random ``random_k``-dimensional subspace interchanged at the same position."""
    random_k: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@torch.no_grad()
def entity_swap_demo(
    model,
    *,
    base_prompt: str = "The city of Paris is in the country of",
    base_entity: str = "Paris",
    source_prompt: str = "The city of Tokyo is in the country of",
    source_entity: str = "Tokyo",
    layer: int = 4,
    random_k: int = 64,
    seed: int = 0,
) -> EntitySwapResult:
    """Run the entity-swap interchange at ``blocks.{layer}.hook_resid_pre``."""
    tokenizer = model.tokenizer
    base = tokenizer(base_prompt, return_tensors="pt").input_ids.to(model.cfg.device)
    source = tokenizer(source_prompt, return_tensors="pt").input_ids.to(model.cfg.device)
    base_pos = entity_token_positions(tokenizer, base_prompt, base_entity)[-1]
    source_pos = entity_token_positions(tokenizer, source_prompt, source_entity)[-1]
    source_resid = capture_resid_pre(model, source, [layer])[layer]
    selection = one_hot_selection(
        torch.tensor([source_pos]), torch.tensor([base_pos]), source.shape[1], base.shape[1]
    ).to(source_resid.device)
    d_model = model.cfg.d_model
    generator = torch.Generator().manual_seed(seed)
    bases = {
        "full": torch.eye(d_model),
        "random": torch.linalg.qr(torch.randn(d_model, random_k, generator=generator)).Q,
    }

    def predict(basis: torch.Tensor | None) -> torch.Tensor:
        hooks = []
        if basis is not None:
            basis = basis.to(source_resid.device)
            hooks = [soft_interchange_hook_for(model, layer, source_resid, selection, basis)]
        return model.run_with_hooks(base, fwd_hooks=hooks)[0, -1].softmax(-1)

    source_top = int(model(source)[0, -1].argmax())
    full = predict(bases["full"])
    return EntitySwapResult(
        layer=layer,
        base_prompt=base_prompt,
        source_prompt=source_prompt,
        base_prediction=tokenizer.decode(int(predict(None).argmax())),
        source_prediction=tokenizer.decode(source_top),
        full_patch_prediction=tokenizer.decode(int(full.argmax())),
        full_patch_source_prob=float(full[source_top]),
        random_patch_prediction=tokenizer.decode(int(predict(bases["random"]).argmax())),
        random_k=random_k,
    )

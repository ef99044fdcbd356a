# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 1 · Quick start: an interchange at `blocks.L.hook_resid_pre`
#
# Load the offline default model (SmolLM2-135M-Instruct, a real Llama-architecture model) as a
# TransformerLens bridge, take a base/source prompt pair, and patch the source's residual stream
# into the base at the entity token with a hook imported from `hyperdas_tl`. Every section ends
# with assertions on what it showed.

# %% tags=["parameters"]
# Parameters (papermill-style): HYPERDAS_TL_PROFILE=small (CI) or full
import os

PROFILE = os.environ.get("HYPERDAS_TL_PROFILE", "small")
LAYER = 4
SUBSPACE_DIMS = (
    [0, 8, 64, 256, 576] if PROFILE == "small" else [0, 4, 8, 16, 32, 64, 128, 256, 384, 512, 576]
)

# %%
import torch

from hyperdas_tl import (
    capture_resid_pre,
    load_model,
    one_hot_selection,
    resid_pre_name,
    soft_interchange_hook_for,
)
from hyperdas_tl.data.batching import entity_token_positions

model = load_model("smollm2-135m", device="cpu")
tokenizer = model.tokenizer
print(model.cfg.n_layers, "layers, d_model =", model.cfg.d_model)

# %% [markdown]
# ## A base / source pair
#
# The entity's last token is found from the tokenizer's offset mapping, never by counting.

# %%
base_prompt, base_entity = "The city of Paris is in the country of", "Paris"
source_prompt, source_entity = "The city of Tokyo is in the country of", "Tokyo"
base = model.to_tokens(base_prompt)
source = model.to_tokens(source_prompt)
base_pos = entity_token_positions(tokenizer, base_prompt, base_entity)[-1]
source_pos = entity_token_positions(tokenizer, source_prompt, source_entity)[-1]
print([tokenizer.decode(t) for t in base[0]], "entity at", base_pos)
print([tokenizer.decode(t) for t in source[0]], "entity at", source_pos)


def top(logits):
    return tokenizer.decode(int(logits[0, -1].argmax()))


with torch.no_grad():
    base_answer, source_answer = top(model(base)), top(model(source))
print(repr(base_answer), repr(source_answer))
assert tokenizer.decode(base[0, base_pos]).strip() == "Paris"
assert (base_answer, source_answer) == (" France", " Japan")

# %% [markdown]
# ## Patch the whole residual stream at the entity token
#
# `soft_interchange_hook_for` returns a `(hook name, hook fn)` pair for `run_with_hooks`; the hook
# is removed after the call.

# %%
source_resid = capture_resid_pre(model, source, [LAYER])[LAYER]
selection = one_hot_selection(
    torch.tensor([source_pos]), torch.tensor([base_pos]), source.shape[1], base.shape[1]
)
full_basis = torch.eye(model.cfg.d_model)
name, hook_fn = soft_interchange_hook_for(model, LAYER, source_resid, selection, full_basis)
with torch.no_grad():
    patched = model.run_with_hooks(base, fwd_hooks=[(name, hook_fn)])
japan = tokenizer(" Japan").input_ids[0]
print(name, "->", repr(top(patched)), "p(Japan) =", float(patched[0, -1].softmax(-1)[japan]))
assert name == resid_pre_name(model, LAYER)
assert top(patched) == " Japan"
assert all(not hp.fwd_hooks for hp in model.hook_dict.values())  # scoped: nothing left behind

# %% [markdown]
# ## How much of the residual must move?
#
# Random k-dimensional subspaces at the same position: DAS and HyperDAS exist to find a *small*
# subspace that carries the country; a random one of the same size does not.

# %%
generator = torch.Generator().manual_seed(0)
p_japan = {}
for k in SUBSPACE_DIMS:
    basis = torch.linalg.qr(
        torch.randn(model.cfg.d_model, model.cfg.d_model, generator=generator)
    ).Q[:, :k]
    hook = soft_interchange_hook_for(
        model, LAYER, source_resid, selection, basis, allow_empty=k == 0
    )  # k = 0: the no-op end of the sweep
    with torch.no_grad():
        p_japan[k] = float(model.run_with_hooks(base, fwd_hooks=[hook])[0, -1].softmax(-1)[japan])
for k, p in p_japan.items():
    print(f"k={k:4d}  p(' Japan')={p:.3f}")
assert p_japan[0] < 0.05 and p_japan[576] > 0.5
assert p_japan[8] < 0.5  # a random small subspace does not carry the country

# %% [markdown]
# ## The same with a context manager
#
# `model.hooks(...)` scopes hooks to a `with` block and removes them even when the forward raises.

# %%
try:
    with model.hooks(fwd_hooks=[(name, hook_fn)]):
        model(base[:, :3])  # wrong length for this hook: raises a clear ValueError
except ValueError as error:
    print("ValueError:", error)
assert all(not hp.fwd_hooks for hp in model.hook_dict.values())

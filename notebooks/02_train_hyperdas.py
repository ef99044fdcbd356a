# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 2 · Train HyperDAS
#
# Build the model-specific instance (offline GeoNames cities; the concepts are a city's Country and
# Continent), train the hypernetwork, score Cause / Isolate / Disentangle for all three selection
# read-outs, and look at the positions it selects. The checkpoint is saved for notebooks 3 and 4.
#
# Profile `small` (CI) trains 30 steps on a few hundred examples and judges teacher forced; `full`
# is the `small` run profile of `hyperdas_tl.hyperdas.run` (400 steps, generation judging too, real
# RAVEL when `HYPERDAS_TL_RAVEL` is set).

# %% tags=["parameters"]
# Parameters (papermill-style): HYPERDAS_TL_PROFILE=small (CI) or full
import os

PROFILE = os.environ.get("HYPERDAS_TL_PROFILE", "small")
N_SHOW = 3  # examples whose selection is shown

# %%
import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

from hyperdas_tl.experiment import TEST_SPLITS, build_experiment_data
from hyperdas_tl.hyperdas import SELECTION_MODES, HyperDAS, save_checkpoint, train_hyperdas
from hyperdas_tl.hyperdas.run import evaluate_hyperdas
from hyperdas_tl.metrics import results_to_markdown
from hyperdas_tl.models import load_model
from hyperdas_tl.notebook_support import (
    MODEL_NAME,
    example_selection,
    notebook_dir,
    notebook_profile,
)
from hyperdas_tl.viz import save_html, selection_pattern_html, selection_tokens_html

torch.manual_seed(0)
profile = notebook_profile(PROFILE)
model = load_model(MODEL_NAME, device="cpu" if PROFILE == "small" else None)
print(profile.data)
print(profile.hyperdas)

# %% [markdown]
# ## The instance and its examples
#
# `build_experiment_data` keeps the entities and templates the model answers consistently (cached
# per model), draws Cause and Isolate pairs per concept and split, and collates them.

# %%
data = build_experiment_data(model, profile.data, model_name=MODEL_NAME)
for split, counts in data.counts().items():
    print(f"{split:13s}", counts)
example = data.examples["test_entity"][0]
print(
    example.kind,
    "|",
    example.concept,
    "|",
    repr(example.base_prompt),
    "<-",
    repr(example.source_prompt),
    "| label",
    repr(example.label),
)
assert {"train", "val_entity", "test_entity"} <= set(data.batches)
assert set(profile.data.attributes) == {e.target_attribute for e in data.examples["train"]}
assert {e.kind for e in data.examples["test_entity"]} == {"cause", "isolate"}

# %% [markdown]
# ## Training
#
# Cause and isolate examples of both concepts in one run; the sparsity penalty ramps up over the
# second half. The training loss is noisy per batch, so the check compares the first and last fifth
# of the run.

# %%
config = profile.hyperdas.with_fields(target_model=MODEL_NAME, data=profile.data.to_dict())
hyperdas = HyperDAS(model, config)
train = train_hyperdas(
    hyperdas,
    data.batches["train"],
    val_batches=data.batches["val_entity"],
    show_progress=False,
)
checkpoint = save_checkpoint(notebook_dir(PROFILE) / "checkpoint", hyperdas.eval())
losses = [record.loss for record in train.history]
fifth = max(1, len(losses) // 5)
first, last = sum(losses[:fifth]) / fifth, sum(losses[-fifth:]) / fifth
print(
    f"{train.steps} steps: loss {first:.3f} (first fifth) -> {last:.3f} (last fifth); "
    f"validation {train.validation}; saved to {checkpoint}"
)
plt.figure(figsize=(6, 2.5))
plt.plot(range(1, len(losses) + 1), losses, label="loss")
running = [record.running_loss for record in train.history]
plt.plot(range(1, len(losses) + 1), running, label="running")
plt.xlabel("step")
plt.ylabel("loss")
plt.legend()
plt.tight_layout()
plt.show()
assert train.steps == profile.hyperdas.training.n_steps == len(losses)
assert all(torch.isfinite(torch.tensor(losses)))
assert last < first, "training loss did not decrease"
assert (checkpoint / "weights.safetensors").is_file()

# %% [markdown]
# ## Cause / Isolate / Disentangle for the three read-outs
#
# `soft` is what training optimises; `one_to_many` lets each base token read its argmax source token
# (or keep itself); `one_to_one` additionally lets each source token feed at most one base token.

# %%
splits = ("test_entity",) if PROFILE == "small" else TEST_SPLITS
results = evaluate_hyperdas(
    hyperdas, data, splits=splits, eval_config=profile.eval_config(show_progress=False)
)
display(Markdown(results_to_markdown(results)))
assert {r.method for r in results} == {f"HyperDAS ({m})" for m in SELECTION_MODES}
for result in results:
    for score in result.attributes:
        assert score.n_cause + score.n_isolate > 0
        for value in (score.cause, score.isolate, score.disentangle):
            assert value is None or 0.0 <= value <= 1.0

# %% [markdown]
# ## What it selects
#
# For a few test examples: the source × base selection as an attention pattern (base tokens attend
# to source tokens or to `∅:keep`, one head per read-out), and both prompts coloured by selection
# weight. Hover a head thumbnail to switch read-outs. The same views are saved as self-contained
# HTML (the circuitsvis JavaScript inlined) next to the checkpoint.

# %%
batch = data.batches["test_entity"][0]
views = []
for row in range(min(N_SHOW, len(batch))):
    shown = example_selection(hyperdas, batch, row)
    e = shown.example
    title = (
        f"{e.kind} / {e.target_attribute}: {e.base_prompt!r} <- {e.source_prompt!r} "
        f"(label {e.label!r})"
    )
    tokens = (shown.source_tokens, shown.base_tokens)
    view = selection_pattern_html(shown.read_outs, *tokens, title=title)
    view = view + selection_tokens_html(shown.read_outs["soft"], *tokens, name="soft")
    views.append(view)
    display(view)
    for mode, weights in shown.read_outs.items():
        assert weights.shape == (len(shown.source_tokens) + 1, len(shown.base_tokens))
        assert torch.allclose(weights.sum(0), torch.ones(len(shown.base_tokens)), atol=1e-4)
        if mode != "soft":
            assert set(weights.unique().tolist()) <= {0.0, 1.0}
path = save_html(views, notebook_dir(PROFILE) / "selection_examples.html")
assert path.stat().st_size > 10_000 and "unpkg" not in path.read_text()

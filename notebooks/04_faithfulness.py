# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 4 · Faithfulness: does the hypernetwork find the concept, or inject it?
#
# A hypernetwork that reads the source text could learn to *write* the counterfactual label into
# the base run, whatever the target computes. Each control removes one legitimate route for the
# label and checks that HyperDAS's success goes with it (`hyperdas_tl.faithfulness`). The
# assertions are loose enough for the CI profile (30 training steps); the full-profile numbers are
# produced by `analyses/run_faithfulness.py`.

# %% tags=["parameters"]
# Parameters (papermill-style): HYPERDAS_TL_PROFILE=small (CI) or full
import os

PROFILE = os.environ.get("HYPERDAS_TL_PROFILE", "small")

import tempfile
from pathlib import Path

# full: figures go to analyses/figures/ (linked from the README); small: a temporary folder
FIGURES = Path("../analyses/figures") if PROFILE == "full" else Path(tempfile.mkdtemp())

SEED = 0
N_VIEWS = 4  # examples shown with their selections
TOLERANCE = 0.05  # slack on "control <= HyperDAS" comparisons (a handful of examples at small)

# %%
import torch
from IPython.display import Markdown, display

from hyperdas_tl import faithfulness as ft
from hyperdas_tl.metrics import results_to_markdown
from hyperdas_tl.models import load_model
from hyperdas_tl.notebook_support import MODEL_NAME, example_selection, load_or_train
from hyperdas_tl.viz import (
    householder_pca_figure,
    save_html,
    selection_pattern_html,
    selection_tokens_html,
)

torch.manual_seed(SEED)
model = load_model(MODEL_NAME, device="cpu" if PROFILE == "small" else None)
run = load_or_train(PROFILE, target=model)
hyperdas, data = run.hyperdas, run.data
test = data.batches["test_entity"]
# every control below in one call (the call analyses/run_faithfulness.py writes out); the
# target's states and HyperDAS's own scores are computed once and shared by the controls
suite = ft.faithfulness_suite(
    hyperdas, {"test_entity": test}, data.batches["train"], seed=SEED,
    random_target_split="test_entity",
)  # fmt: skip
controls = suite.splits["test_entity"]
reference = controls.reference
display(Markdown(results_to_markdown(list(reference.values()))))
own = controls.hyperdas
print({mode: (score.cause, score.isolate) for mode, score in own.items()})
assert set(own) == {"soft", "one_to_many", "one_to_one"}
assert all(0.0 <= s.cause <= 1.0 and 0.0 <= s.isolate <= 1.0 for s in own.values())

# %% [markdown]
# ## The selection, as circuitsvis views
#
# Per example: the source × base selection as an attention pattern (base tokens are queries, source
# tokens and `∅:keep` are keys; one head per read-out: hover a thumbnail to switch), then the base
# tokens coloured by how much of them is replaced and the source tokens by the weight they give
# out, for every read-out. Saved as one self-contained HTML file (no CDN).

# %%
views = []
batch = test[0]
for row in range(min(N_VIEWS, len(batch))):
    shown = example_selection(hyperdas, batch, row)
    e = shown.example
    tokens = (shown.source_tokens, shown.base_tokens)
    view = selection_pattern_html(
        shown.read_outs, *tokens, title=f"{e.kind} / {e.target_attribute}: label {e.label!r}"
    )
    for mode, weights in shown.read_outs.items():
        view = view + selection_tokens_html(weights, *tokens, name=mode)
    views.append(view)
    display(view)
html_path = save_html(views, FIGURES / "faithfulness_selection_views.html")
print("saved", html_path, f"({html_path.stat().st_size // 1024} KiB)")
text = html_path.read_text()
# one pattern + (base, source) tokens per read-out = 7 panels per example, no CDN script
assert all(len(view.panels) == 7 for view in views)
assert "unpkg" not in text and text.count('CircuitsVis.render("hyperdas-tl-') == 7 * len(views)

# %% [markdown]
# ## Control 1 · source == base changes nothing
#
# Every source is replaced by its own base prompt. A selection that only mixes each base position
# with its own state (or keeps it) leaves the run *exactly* unchanged; `own_state_mass` is how much
# of the selection does that. A selection that moves the entity's state to *another* position (say,
# the last token) still changes that position when source == base: the predictions may move, and
# they do for a soft selection spread over many positions (the CI profile's 30-step model). So the
# assertions are: no example with a position-aligned selection changes (exact), and a read-out that
# is position-aligned overall keeps ≥ 95% of the predictions.

# %%
same = controls.source_equals_base
for mode in same.unchanged:
    print(
        f"{mode:12s} unchanged {same.unchanged[mode]:.3f}, own-state mass "
        f"{same.own_state_mass[mode]:.3f}, max |Δ logit| {same.max_logit_change[mode]:.2f}"
    )
for mode in same.unchanged:
    # exact: an example whose selection only keeps/aligns positions cannot change
    assert same.unexplained_changes[mode] == 0, f"{mode}: unexplained change"
    # and where the read-out is position-aligned overall, (almost) nothing changes
    if same.own_state_mass[mode] >= 0.95:
        assert same.unchanged[mode] >= 0.95, f"{mode}: source == base changed predictions"

# %% [markdown]
# ## Control 2 · a random subspace of the same rank
#
# HyperDAS's own selection, but `R(e)` replaced by a random orthonormal basis of the same `k` (one
# per example). If the learned subspace matters, Cause drops.

# %%
random_subspace = controls.random_subspace
print(random_subspace)
assert random_subspace.orthonormality_error < 1e-4
assert random_subspace.random_subspace.cause <= random_subspace.hyperdas.cause + TOLERANCE

# %% [markdown]
# ## Control 3 · the source's states zeroed
#
# The hypernetwork and the interchange see the source's residual states set to zero. The
# counterfactual label then has no route into the run but through the hypernetwork's own weights.
# Zeroing the source *erases* the selected part of the base state, and a model that lost the
# entity falls back to its prior answer ("China", "Asia"): when few labels dominate the test
# examples that alone scores Cause. So the bar is the better of HyperDAS's own Cause and the best
# constant answer's (`majority_label_rate`); a hypernetwork that injects labels would beat both.

# %%
zero = controls.zero_source
print(
    f"Cause: HyperDAS {zero.hyperdas.cause:.3f}, zero source {zero.zero_source.cause:.3f}, "
    f"best constant answer {zero.majority_label_rate:.3f}; finite: {zero.finite}"
)
assert zero.finite
bar = max(zero.hyperdas.cause, zero.majority_label_rate)
assert zero.zero_source.cause <= bar + TOLERANCE

# %% [markdown]
# ## Control 4 · a source entity the model does not know
#
# The source entity of every cause example is replaced by "Zorblaxia" (the examples are re-collated
# from their text). The run must not produce the *original* counterfactual label.

# %%
nonsense = controls.nonsense_source
print(nonsense)
assert nonsense.n_examples == sum(e.is_cause for b in test for e in b.examples)
assert all("Zorblaxia" in s["source_prompt"] for s in nonsense.samples)
bar = max(nonsense.original_cause, nonsense.majority_label_rate)
assert nonsense.counterfactual_label_rate <= bar + TOLERANCE

# %% [markdown]
# ## Control 5 · the same HyperDAS against a random-init target
#
# Same architecture, same tokenizer, no knowledge: a `LlamaForCausalLM` at SmolLM2's sizes, seeded.
# HyperDAS is trained with the same config and the same number of steps (its hypernetwork starts
# from the real model's weights, as the audited one did, so only the target's knowledge is gone).
# Any Cause it reaches is written by the hypernetwork: with few labels dominating, steering a
# random model to the most frequent answer is enough for some, so that is the bar again.

# %%
rt = suite.random_target
print(
    f"Cause: real target {rt.real.cause:.3f}, random target {rt.random_target.cause:.3f} "
    f"(without intervention {rt.random_target_clean.cause:.3f}), best constant answer "
    f"{rt.majority_label_rate:.3f}; Isolate on the random target {rt.random_target.isolate:.3f}"
)
assert len(rt.loss) == hyperdas.config.training.n_steps
assert rt.random_target_clean.cause <= 0.05  # a random model knows no country
assert rt.random_target.cause <= max(rt.real.cause, rt.majority_label_rate) + TOLERANCE

# %% [markdown]
# ## Which tokens get selected
#
# Selection mass on the entity's tokens (from the tokenizer's offsets) vs all other prompt tokens,
# against the chance level (the entity tokens' share of the prompt).

# %%
stats = controls.selection
print(
    f"entity tokens are {stats.base_entity_token_share:.2f} of base and "
    f"{stats.source_entity_token_share:.2f} of source prompt tokens"
)
for mode, read in stats.read_outs.items():
    print(
        f"{mode:12s} base entity share {read.base_entity_share:.2f}, source entity share "
        f"{read.source_entity_share:.2f}, "
        f"{read.replaced_per_example:.2f} base positions replaced"
    )
    print("   top source tokens:", [(t, round(w, 2)) for t, w in read.top_source_tokens[:5]])
for read in stats.read_outs.values():
    assert 0.0 <= read.base_entity_share <= 1.0 and 0.0 <= read.source_entity_share <= 1.0
    assert read.replaced_per_example >= 0.0

# %% [markdown]
# ## Soft vs hard read-outs
#
# Training optimises the soft mixture; the hard read-outs keep one source token per base token. A
# large positive gap means the soft score relies on mixing that the hard selection cannot
# express.

# %%
gap = controls.soft_hard_gap
for mode, values in gap.gaps.items():
    print(f"soft - {mode}:", {k: None if v is None else round(v, 3) for k, v in values.items()})
assert set(gap.gaps) == {"one_to_many", "one_to_one"}
assert all(v is None or -1.0 <= v <= 1.0 for values in gap.gaps.values() for v in values.values())

# %% [markdown]
# ## Householder vectors by attribute
#
# `R(e) = (I - 2 v vᵀ) R0`: each example's reflection vector `v(e)`, projected on its first two
# principal components and coloured by the concept (attribute) it was asked about.

# %%
house = controls.householder
fig = householder_pca_figure(house.projection, house.attributes, house.explained_variance)
pca_png = FIGURES / "householder_pca.png"
fig.savefig(pca_png, dpi=120)
display(fig)
print("centroid accuracy", house.centroid_accuracy, "mean cosine", house.mean_cosine)
n = sum(len(b) for b in test)
assert house.projection.shape == (n, 2) and house.vectors.shape == (n, model.cfg.d_model)
assert torch.allclose(house.vectors.norm(dim=-1), torch.ones(n), atol=1e-3)
assert pca_png.stat().st_size > 0

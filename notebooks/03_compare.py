# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 3 · Compare HyperDAS with controls, probes, DAS and MDAS — with intervals
#
# One call of `hyperdas_tl.compare.compare_methods` (the pipeline `analyses/run_benchmark.py`
# runs at full size) scores every method at the same layer (HyperDAS's `blocks.L.hook_resid_pre`)
# with the same rank `k` on the same test examples:
#
# - **controls**: no intervention, a random orthonormal subspace of rank k, and the full-residual
#   swap at the entity token (the ceiling a single-position method can reach);
# - **probe**: the span of each attribute's linear-probe weights, used as its interchange subspace;
# - **DAS / MDAS** in RAVEL's protocol: one subspace per target attribute, trained on that
#   attribute's rows (MDAS adds its isolate rows), learning rate and epoch chosen on `val_entity`;
# - **HyperDAS**: the checkpoint notebook 2 saved (trained here if missing), one model for both
#   concepts, scored in its three read-outs.
#
# Every score carries a 95 % cluster-bootstrap interval (resampling base entities) and the stated
# differences a paired interval; "A beats B" only when that interval excludes 0 and no seed's own
# paired interval points the other way. The `small` profile (CI) is far too small to decide
# anything: it checks the pipeline, not the methods.

# %% tags=["parameters"]
# Parameters (papermill-style): HYPERDAS_TL_PROFILE=small (CI) or full
import os

PROFILE = os.environ.get("HYPERDAS_TL_PROFILE", "small")

import tempfile
from pathlib import Path

# full: figures go to analyses/figures/ (linked from the README); small: a temporary folder
FIGURES = Path("../analyses/figures") if PROFILE == "full" else Path(tempfile.mkdtemp())
PROBE_LAYERS = tuple(range(0, 30, 3)) if PROFILE == "small" else None  # None: every layer

# %%
import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

from hyperdas_tl.baselines import ProbeConfig, train_probes
from hyperdas_tl.compare import DEFAULT_METHODS, CompareSettings, compare_methods
from hyperdas_tl.compare.figure import comparison_figure
from hyperdas_tl.models import load_model
from hyperdas_tl.notebook_support import MODEL_NAME, load_or_train
from hyperdas_tl.stats import BootstrapConfig

torch.manual_seed(0)
model = load_model(MODEL_NAME, device="cpu" if PROFILE == "small" else None)
run = load_or_train(PROFILE, target=model)
hyperdas, data, profile = run.hyperdas, run.data, run.profile
LAYER, K, SEED = hyperdas.layer, hyperdas.k, hyperdas.config.training.seed
ATTRIBUTES = profile.data.attributes
test = data.batches["test_entity"]
print(
    f"HyperDAS {'loaded from' if run.loaded else 'trained and saved to'} {run.checkpoint}; "
    f"layer {LAYER}, k {K}; {sum(len(b) for b in test)} test examples"
)
assert run.hyperdas.layer == profile.hyperdas.architecture.layer

# %% [markdown]
# ## Probe accuracy per layer
#
# Fitted on the training split's entities, scored on the held-out test entities (a value never seen
# in training counts as wrong).

# %%
probe_batches = data.batches["train"] + test
sweeps = {
    attribute: train_probes(
        model, probe_batches, attribute, ProbeConfig(layers=PROBE_LAYERS, show_progress=False)
    )
    for attribute in ATTRIBUTES
}
fig, ax = plt.subplots(figsize=(6, 3))
for attribute, sweep in sweeps.items():
    layers = [s.layer for s in sweep.scores]
    ax.plot(layers, [s.test_accuracy for s in sweep.scores], marker="o", label=attribute)
    print(
        f"{attribute}: best layer {sweep.best_layer}, {sweep.scores[0].n_classes} classes, "
        f"{sweep.scores[0].n_train} train / {sweep.scores[0].n_test} test samples"
    )
ax.axvline(LAYER, color="grey", linestyle="--", label=f"intervention layer {LAYER}")
ax.set_xlabel("layer")
ax.set_ylabel("probe test accuracy")
ax.set_ylim(0, 1.05)
ax.legend()
fig.tight_layout()
probe_png = FIGURES / "probe_accuracy_per_layer.png"
fig.savefig(probe_png, dpi=120)
plt.show()
for sweep in sweeps.values():
    for s in sweep.scores:
        assert 0.0 <= s.test_accuracy <= 1.0 and 0.0 <= s.train_accuracy <= 1.0
    assert LAYER in sweep.probes or PROBE_LAYERS is not None
assert probe_png.stat().st_size > 0

# %% [markdown]
# ## Every method on the same examples
#
# DAS and MDAS keep the best epoch on `val_entity` and, in the full profile, the best of three
# learning rates (the small CI profile tries one, 1e-2); HyperDAS is scored as given (not
# retrained).

# %%
settings = CompareSettings(
    eval_splits=("test_entity",) if PROFILE == "small" else ("test_entity", "test_context"),
    das_lrs=(1e-2,) if PROFILE == "small" else (3e-3, 1e-2, 3e-2),
    das_max_epochs=2 if PROFILE == "small" else 20,
    das_patience=1 if PROFILE == "small" else 3,
    probe_max_iter=50 if PROFILE == "small" else 200,
    bootstrap=BootstrapConfig(n_resamples=500 if PROFILE == "small" else 2000),
)
report = compare_methods(
    model, data, LAYER, K, DEFAULT_METHODS, [SEED], settings=settings,
    trained_hyperdas={SEED: hyperdas},
)  # fmt: skip
display(Markdown(report.to_markdown()))
summary = report.summary()
cells = summary[report.domain]["test_entity"]
assert set(cells) == set(report.methods) >= {"DAS", "MDAS", "probe", "HyperDAS (soft)"}
assert len({(c["n_cause"], c["n_isolate"]) for c in cells.values()}) == 1, "methods saw other rows"
for cell in cells.values():
    for metric in ("cause", "isolate", "disentangle"):
        m = cell[metric]
        assert m is None or 0.0 <= m["lo"] <= m["mean"] <= m["hi"] <= 1.0
assert cells["no intervention"]["isolate"]["mean"] >= 0.9  # doing nothing keeps the base answer
assert report.curves[f"HyperDAS seed {SEED}"]["given"] is True  # scored, not retrained
assert summary["differences"]["test_entity"]  # the paired differences the README states

# %% [markdown]
# ## Cause / Isolate / Disentangle with 95 % intervals
#
# The dashed line is the no-op's Disentangle: a method below it has done harm on balance.

# %%
fig = comparison_figure(summary)
scores_png = FIGURES / "method_comparison.png"
fig.savefig(scores_png, dpi=120)
plt.show()
assert scores_png.stat().st_size > 0 and probe_png.stat().st_size > 0
if PROFILE == "full":
    assert (FIGURES / "method_comparison.png").exists()
    assert (FIGURES / "probe_accuracy_per_layer.png").exists()

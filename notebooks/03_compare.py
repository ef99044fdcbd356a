# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 3 · Compare: probes, DAS, MDAS, probe subspaces and HyperDAS
#
# All methods intervene at the same layer (HyperDAS's `blocks.L.hook_resid_pre`) with the same rank
# `k`, and are scored on the same test examples by the same code (`hyperdas_tl.metrics.evaluate`).
#
# - **Probes**: a linear probe per layer reads the entity's last token and predicts the attribute
#   value (accuracy vs layer).
# - **DAS**: a learned rank-k subspace at the entity's last token, trained on cause examples.
# - **MDAS**: the same subspace trained on cause and isolate examples (RAVEL's multi-task DAS).
# - **Probe subspace**: the span of the probe's weight rows, used as the interchange subspace.
# - **HyperDAS**: the checkpoint notebook 2 saved (trained here if missing), in its three read-outs.
#
# DAS, MDAS and probes are trained per attribute; HyperDAS is one model for both concepts.

# %% tags=["parameters"]
# Parameters (papermill-style): HYPERDAS_TL_PROFILE=small (CI) or full
import os

PROFILE = os.environ.get("HYPERDAS_TL_PROFILE", "small")

import tempfile
from pathlib import Path

# full: figures go to analyses/figures/ (linked from the README); small: a temporary folder
FIGURES = Path("../analyses/figures") if PROFILE == "full" else Path(tempfile.mkdtemp())

DAS_STEPS = 15 if PROFILE == "small" else None  # None: DASConfig's epochs
PROBE_LAYERS = tuple(range(0, 30, 3)) if PROFILE == "small" else None  # None: every layer

# %%
import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

from hyperdas_tl.baselines import DASConfig, ProbeConfig, train_das, train_probes
from hyperdas_tl.hyperdas.run import evaluate_hyperdas
from hyperdas_tl.metrics import entity_subspace_intervention, evaluate, results_to_markdown
from hyperdas_tl.models import load_model
from hyperdas_tl.notebook_support import MODEL_NAME, attribute_batches, load_or_train, score_rows

torch.manual_seed(0)
model = load_model(MODEL_NAME, device="cpu" if PROFILE == "small" else None)
run = load_or_train(PROFILE, target=model)
hyperdas, data, profile = run.hyperdas, run.data, run.profile
LAYER, K = hyperdas.layer, hyperdas.k
ATTRIBUTES = profile.data.attributes
eval_config = profile.eval_config(show_progress=False)
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
# ## DAS, MDAS and the probe subspace at HyperDAS's layer
#
# Each is trained on one attribute's training examples and scored on that attribute's test
# examples: the same rows HyperDAS is scored on.

# %%
baselines = []
for attribute in ATTRIBUTES:
    train_rows = attribute_batches(data.batches["train"], attribute)
    test_rows = attribute_batches(test, attribute)
    for objective in ("das", "mdas"):
        config = DASConfig(
            layer=LAYER, k=K, objective=objective, max_steps=DAS_STEPS, lr=1e-2, show_progress=False
        )
        das = train_das(model, train_rows, config)
        baselines.append(
            evaluate(
                model,
                test_rows,
                das.intervention.intervention(model),
                method=objective.upper(),
                setting="test_entity",
                config=eval_config,
                metadata={"layer": LAYER, "k": K},
            )
        )
        assert das.history.step_loss and all(torch.isfinite(torch.tensor(das.history.step_loss)))
    probe_layer = LAYER if LAYER in sweeps[attribute].probes else sweeps[attribute].best_layer
    probe = sweeps[attribute].probes[probe_layer]
    basis = probe.subspace(min(K, len(probe.classes) - 1))
    probe_intervention = entity_subspace_intervention(model, probe_layer, basis)
    baselines.append(
        evaluate(
            model,
            test_rows,
            probe_intervention,
            method="probe subspace",
            setting="test_entity",
            config=eval_config,
            metadata={"layer": probe_layer, "k": basis.shape[1]},
        )
    )
print(len(baselines), "baseline results")

# %%
hyper_results = evaluate_hyperdas(hyperdas, data, splits=("test_entity",), eval_config=eval_config)
results = baselines + hyper_results
display(Markdown(results_to_markdown(results)))
rows = score_rows(results)
counts = {}
for row in rows:
    assert all(row[m] is None or 0.0 <= row[m] <= 1.0 for m in ("cause", "isolate", "disentangle"))
    counts.setdefault(row["attribute"], set()).add((row["n_cause"], row["n_isolate"]))
assert all(len(c) == 1 for c in counts.values()), f"methods saw different examples: {counts}"
assert {row["method"] for row in rows} >= {"DAS", "MDAS", "probe subspace", "HyperDAS (soft)"}

# %% [markdown]
# ## Cause / Isolate / Disentangle per method and read-out
#
# Bars are the mean over the two attributes (teacher forced); dots are the attributes.

# %%
methods = list(dict.fromkeys(row["method"] for row in rows))
metrics = ("cause", "isolate", "disentangle")
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), sharey=True)
for ax, metric in zip(axes, metrics, strict=True):
    for i, method in enumerate(methods):
        values = [
            row[metric] for row in rows if row["method"] == method and row[metric] is not None
        ]
        ax.bar(i, sum(values) / len(values) if values else 0.0, color=f"C{i}")
        ax.scatter([i] * len(values), values, color="black", s=10, zorder=3)
    ax.set_xticks(range(len(methods)), methods, rotation=40, ha="right")
    ax.set_title(metric.capitalize())
    ax.set_ylim(0, 1.05)
fig.tight_layout()
scores_png = FIGURES / "method_comparison.png"
fig.savefig(scores_png, dpi=120)
plt.show()
assert scores_png.stat().st_size > 0 and probe_png.stat().st_size > 0
if PROFILE == "full":
    assert (FIGURES / "method_comparison.png").exists()
    assert (FIGURES / "probe_accuracy_per_layer.png").exists()

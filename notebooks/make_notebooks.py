"""Generate notebooks 02-04 from the cells below (run from anywhere; overwrites them).

    .venv/bin/python notebooks/make_notebooks.py

The notebooks are committed without outputs; this script is their reviewable source. Each
starts with one parameters cell reading ``HYPERDAS_TL_PROFILE`` ("small" = the CI profile,
"full" = real sizes), holds only calls into ``hyperdas_tl`` plus display code, and ends every
section with assertions on what it showed. Notebook 1 is maintained on its own.
"""

import hashlib
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

PARAMETERS = """# Parameters (papermill-style): HYPERDAS_TL_PROFILE=small (CI) or full
import os

PROFILE = os.environ.get("HYPERDAS_TL_PROFILE", "small")
"""

# ----------------------------------------------------------------------------- notebook 2

TRAIN = [
    (
        "md",
        """# 2 · Train HyperDAS

Build the model-specific instance (offline GeoNames cities; the concepts are a city's Country and
Continent), train the hypernetwork, score Cause / Isolate / Disentangle for all three selection
read-outs, and look at the positions it selects. The checkpoint is saved for notebooks 3 and 4.

Profile `small` (CI) trains 30 steps on a few hundred examples and judges teacher forced; `full`
is the `small` run profile of `hyperdas_tl.hyperdas.run` (400 steps, generation judging too, real
RAVEL when `HYPERDAS_TL_RAVEL` is set).""",
    ),
    ("code", PARAMETERS + "N_SHOW = 3  # examples whose selection is shown\n"),
    (
        "code",
        """from dataclasses import replace

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
print(profile.hyperdas)""",
    ),
    (
        "md",
        """## The instance and its examples

`build_experiment_data` keeps the entities and templates the model answers consistently (cached
per model), draws Cause and Isolate pairs per concept and split, and collates them.""",
    ),
    (
        "code",
        """data = build_experiment_data(model, profile.data, model_name=MODEL_NAME)
for split, counts in data.counts().items():
    print(f"{split:13s}", counts)
example = data.examples["test_entity"][0]
print(example.kind, "|", example.concept, "|", repr(example.base_prompt), "<-",
      repr(example.source_prompt), "| label", repr(example.label))
assert {"train", "val_entity", "test_entity"} <= set(data.batches)
assert set(profile.data.attributes) == {e.target_attribute for e in data.examples["train"]}
assert {e.kind for e in data.examples["test_entity"]} == {"cause", "isolate"}""",
    ),
    (
        "md",
        """## Training

Cause and isolate examples of both concepts in one run; the sparsity penalty ramps up over the
second half. The training loss is noisy per batch, so the check compares the first and last fifth
of the run.""",
    ),
    (
        "code",
        """config = replace(profile.hyperdas, target_model=MODEL_NAME,
                 data=profile.data.to_dict())
hyperdas = HyperDAS(model, config)
train = train_hyperdas(hyperdas, data.batches["train"], hyperdas.config,
                       val_batches=data.batches["val_entity"], progress=False)
checkpoint = save_checkpoint(notebook_dir(PROFILE) / "checkpoint", hyperdas.eval())
losses = [record["loss"] for record in train.history]
fifth = max(1, len(losses) // 5)
first, last = sum(losses[:fifth]) / fifth, sum(losses[-fifth:]) / fifth
print(f"{train.steps} steps: loss {first:.3f} (first fifth) -> {last:.3f} (last fifth); "
      f"validation {train.validation}; saved to {checkpoint}")
plt.figure(figsize=(6, 2.5))
plt.plot(range(1, len(losses) + 1), losses, label="loss")
running = [record["running_loss"] for record in train.history]
plt.plot(range(1, len(losses) + 1), running, label="running")
plt.xlabel("step"); plt.ylabel("loss"); plt.legend(); plt.tight_layout(); plt.show()
assert train.steps == profile.hyperdas.n_steps == len(losses)
assert all(torch.isfinite(torch.tensor(losses)))
assert last < first, "training loss did not decrease"
assert (checkpoint / "weights.safetensors").is_file()""",
    ),
    (
        "md",
        """## Cause / Isolate / Disentangle for the three read-outs

`soft` is what training optimises; `one_to_many` lets each base token read its argmax source token
(or keep itself); `one_to_one` additionally lets each source token feed at most one base token.""",
    ),
    (
        "code",
        """splits = ("test_entity",) if PROFILE == "small" else TEST_SPLITS
results = evaluate_hyperdas(hyperdas, data, splits=splits,
                             eval_config=profile.eval_config(progress=False))
display(Markdown(results_to_markdown(results)))
assert {r.method for r in results} == {f"HyperDAS ({m})" for m in SELECTION_MODES}
for result in results:
    for score in result.attributes:
        assert score.n_cause + score.n_isolate > 0
        for value in (score.cause, score.isolate, score.disentangle):
            assert value is None or 0.0 <= value <= 1.0""",
    ),
    (
        "md",
        """## What it selects

For a few test examples: the source × base selection as an attention pattern (base tokens attend
to source tokens or to `∅:keep`, one head per read-out), and both prompts coloured by selection
weight. Hover a head thumbnail to switch read-outs. The same views are saved as self-contained
HTML (the circuitsvis JavaScript inlined) next to the checkpoint.""",
    ),
    (
        "code",
        """batch = data.batches["test_entity"][0]
views = []
for row in range(min(N_SHOW, len(batch))):
    shown = example_selection(hyperdas, batch, row)
    e = shown.example
    title = (f"{e.kind} / {e.target_attribute}: {e.base_prompt!r} <- {e.source_prompt!r} "
             f"(label {e.label!r})")
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
assert path.stat().st_size > 10_000 and "unpkg" not in path.read_text()""",
    ),
]

# ----------------------------------------------------------------------------- notebook 3

OUTPUT_DIRS = """
import tempfile
from pathlib import Path

# full: figures go to analyses/figures/ (linked from the README); small: a temporary folder
FIGURES = Path("../analyses/figures") if PROFILE == "full" else Path(tempfile.mkdtemp())
"""

COMPARE = [
    (
        "md",
        """# 3 · Compare: probes, DAS, MDAS, probe subspaces and HyperDAS

All methods intervene at the same layer (HyperDAS's `blocks.L.hook_resid_pre`) with the same rank
`k`, and are scored on the same test examples by the same code (`hyperdas_tl.metrics.evaluate`).

- **Probes**: a linear probe per layer reads the entity's last token and predicts the attribute
  value (accuracy vs layer).
- **DAS**: a learned rank-k subspace at the entity's last token, trained on cause examples.
- **MDAS**: the same subspace trained on cause and isolate examples (RAVEL's multi-task DAS).
- **Probe subspace**: the span of the probe's weight rows, used as the interchange subspace.
- **HyperDAS**: the checkpoint notebook 2 saved (trained here if missing), in its three read-outs.

DAS, MDAS and probes are trained per attribute; HyperDAS is one model for both concepts.""",
    ),
    (
        "code",
        PARAMETERS
        + OUTPUT_DIRS
        + """
DAS_STEPS = 15 if PROFILE == "small" else None  # None: DASConfig's epochs
PROBE_LAYERS = tuple(range(0, 30, 3)) if PROFILE == "small" else None  # None: every layer
""",
    ),
    (
        "code",
        """import matplotlib.pyplot as plt
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
LAYER, K = hyperdas.layer, hyperdas.config.k
ATTRIBUTES = profile.data.attributes
eval_config = profile.eval_config(progress=False)
test = data.batches["test_entity"]
print(f"HyperDAS {'loaded from' if run.loaded else 'trained and saved to'} {run.checkpoint}; "
      f"layer {LAYER}, k {K}; {sum(len(b) for b in test)} test examples")
assert run.hyperdas.layer == profile.hyperdas.layer""",
    ),
    (
        "md",
        """## Probe accuracy per layer

Fitted on the training split's entities, scored on the held-out test entities (a value never seen
in training counts as wrong).""",
    ),
    (
        "code",
        """probe_batches = data.batches["train"] + test
sweeps = {
    attribute: train_probes(model, probe_batches, attribute,
                            ProbeConfig(layers=PROBE_LAYERS, show_progress=False))
    for attribute in ATTRIBUTES
}
fig, ax = plt.subplots(figsize=(6, 3))
for attribute, sweep in sweeps.items():
    layers = [s.layer for s in sweep.scores]
    ax.plot(layers, [s.test_accuracy for s in sweep.scores], marker="o", label=attribute)
    print(f"{attribute}: best layer {sweep.best_layer}, {sweep.scores[0].n_classes} classes, "
          f"{sweep.scores[0].n_train} train / {sweep.scores[0].n_test} test samples")
ax.axvline(LAYER, color="grey", linestyle="--", label=f"intervention layer {LAYER}")
ax.set_xlabel("layer"); ax.set_ylabel("probe test accuracy"); ax.set_ylim(0, 1.05); ax.legend()
fig.tight_layout()
probe_png = FIGURES / "probe_accuracy_per_layer.png"
fig.savefig(probe_png, dpi=120)
plt.show()
for sweep in sweeps.values():
    for s in sweep.scores:
        assert 0.0 <= s.test_accuracy <= 1.0 and 0.0 <= s.train_accuracy <= 1.0
    assert LAYER in sweep.probes or PROBE_LAYERS is not None
assert probe_png.stat().st_size > 0""",
    ),
    (
        "md",
        """## DAS, MDAS and the probe subspace at HyperDAS's layer

Each is trained on one attribute's training examples and scored on that attribute's test
examples: the same rows HyperDAS is scored on.""",
    ),
    (
        "code",
        """baselines = []
for attribute in ATTRIBUTES:
    train_rows = attribute_batches(data.batches["train"], attribute)
    test_rows = attribute_batches(test, attribute)
    for objective in ("das", "mdas"):
        config = DASConfig(layer=LAYER, k=K, objective=objective, max_steps=DAS_STEPS, lr=1e-2,
                           show_progress=False)
        das = train_das(model, train_rows, config)
        baselines.append(evaluate(model, test_rows, das.intervention.intervention(model),
                                  method=objective.upper(), setting="test_entity",
                                  config=eval_config, metadata={"layer": LAYER, "k": K}))
        assert das.history.step_loss and all(torch.isfinite(torch.tensor(das.history.step_loss)))
    probe_layer = LAYER if LAYER in sweeps[attribute].probes else sweeps[attribute].best_layer
    probe = sweeps[attribute].probes[probe_layer]
    basis = probe.subspace(min(K, len(probe.classes) - 1))
    probe_intervention = entity_subspace_intervention(model, probe_layer, basis)
    baselines.append(evaluate(model, test_rows, probe_intervention, method="probe subspace",
                              setting="test_entity", config=eval_config,
                              metadata={"layer": probe_layer, "k": basis.shape[1]}))
print(len(baselines), "baseline results")""",
    ),
    (
        "code",
        """hyper_results = evaluate_hyperdas(hyperdas, data, splits=("test_entity",),
                                  eval_config=eval_config)
results = baselines + hyper_results
display(Markdown(results_to_markdown(results)))
rows = score_rows(results)
counts = {}
for row in rows:
    assert all(row[m] is None or 0.0 <= row[m] <= 1.0 for m in ("cause", "isolate", "disentangle"))
    counts.setdefault(row["attribute"], set()).add((row["n_cause"], row["n_isolate"]))
assert all(len(c) == 1 for c in counts.values()), f"methods saw different examples: {counts}"
assert {row["method"] for row in rows} >= {"DAS", "MDAS", "probe subspace", "HyperDAS (soft)"}""",
    ),
    (
        "md",
        """## Cause / Isolate / Disentangle per method and read-out

Bars are the mean over the two attributes (teacher forced); dots are the attributes.""",
    ),
    (
        "code",
        """methods = list(dict.fromkeys(row["method"] for row in rows))
metrics = ("cause", "isolate", "disentangle")
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), sharey=True)
for ax, metric in zip(axes, metrics):
    for i, method in enumerate(methods):
        values = [row[metric] for row in rows
                  if row["method"] == method and row[metric] is not None]
        ax.bar(i, sum(values) / len(values) if values else 0.0, color=f"C{i}")
        ax.scatter([i] * len(values), values, color="black", s=10, zorder=3)
    ax.set_xticks(range(len(methods)), methods, rotation=40, ha="right")
    ax.set_title(metric.capitalize()); ax.set_ylim(0, 1.05)
fig.tight_layout()
scores_png = FIGURES / "method_comparison.png"
fig.savefig(scores_png, dpi=120)
plt.show()
assert scores_png.stat().st_size > 0 and probe_png.stat().st_size > 0
if PROFILE == "full":
    assert (FIGURES / "method_comparison.png").exists()
    assert (FIGURES / "probe_accuracy_per_layer.png").exists()""",
    ),
]

# ----------------------------------------------------------------------------- notebook 4

FAITHFULNESS = [
    (
        "md",
        """# 4 · Faithfulness: does the hypernetwork find the concept, or inject it?

A hypernetwork that reads the source text could learn to *write* the counterfactual label into
the base run, whatever the target computes. Each control removes one legitimate route for the
label and checks that HyperDAS's success goes with it (`hyperdas_tl.faithfulness`). The
assertions are loose enough for the CI profile (30 training steps); the full-profile numbers are
produced by `analyses/run_faithfulness.py`.""",
    ),
    (
        "code",
        PARAMETERS
        + OUTPUT_DIRS
        + """
SEED = 0
N_VIEWS = 4  # examples shown with their selections
TOLERANCE = 0.05  # slack on "control <= HyperDAS" comparisons (a handful of examples at small)
""",
    ),
    (
        "code",
        """import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

from hyperdas_tl import faithfulness as ft
from hyperdas_tl.metrics import results_to_markdown
from hyperdas_tl.models import load_model
from hyperdas_tl.notebook_support import MODEL_NAME, example_selection, load_or_train
from hyperdas_tl.viz import save_html, selection_pattern_html, selection_tokens_html

torch.manual_seed(SEED)
model = load_model(MODEL_NAME, device="cpu" if PROFILE == "small" else None)
run = load_or_train(PROFILE, target=model)
hyperdas, data = run.hyperdas, run.data
test = data.batches["test_entity"]
states = ft.target_states_for(hyperdas, test)  # shared by every control below
reference = ft.hyperdas_scores(hyperdas, test, states=states)
display(Markdown(results_to_markdown(list(reference.values()))))
own = {mode: ft.Score.of(result) for mode, result in reference.items()}
print({mode: (score.cause, score.isolate) for mode, score in own.items()})
assert set(own) == {"soft", "one_to_many", "one_to_one"}
assert all(0.0 <= s.cause <= 1.0 and 0.0 <= s.isolate <= 1.0 for s in own.values())""",
    ),
    (
        "md",
        """## The selection, as circuitsvis views

Per example: the source × base selection as an attention pattern (base tokens are queries, source
tokens and `∅:keep` are keys; one head per read-out: hover a thumbnail to switch), then the base
tokens coloured by how much of them is replaced and the source tokens by the weight they give
out, for every read-out. Saved as one self-contained HTML file (no CDN).""",
    ),
    (
        "code",
        """views = []
batch = test[0]
for row in range(min(N_VIEWS, len(batch))):
    shown = example_selection(hyperdas, batch, row)
    e = shown.example
    tokens = (shown.source_tokens, shown.base_tokens)
    view = selection_pattern_html(shown.read_outs, *tokens,
                                  title=f"{e.kind} / {e.target_attribute}: label {e.label!r}")
    for mode, weights in shown.read_outs.items():
        view = view + selection_tokens_html(weights, *tokens, name=mode)
    views.append(view)
    display(view)
html_path = save_html(views, FIGURES / "faithfulness_selection_views.html")
print("saved", html_path, f"({html_path.stat().st_size // 1024} KiB)")
text = html_path.read_text()
# one pattern + (base, source) tokens per read-out = 7 panels per example, no CDN script
assert all(len(view.panels) == 7 for view in views)
assert "unpkg" not in text and text.count('CircuitsVis.render("hyperdas-tl-') == 7 * len(views)""",
    ),
    (
        "md",
        """## Control 1 · source == base changes nothing

Every source is replaced by its own base prompt. A selection that only mixes each base position
with its own state (or keeps it) leaves the run *exactly* unchanged; `own_state_mass` is how much
of the selection does that. A selection that moves the entity's state to *another* position (say,
the last token) still changes that position when source == base: the predictions may move, and
they do for a soft selection spread over many positions (the CI profile's 30-step model). So the
assertions are: no example with a position-aligned selection changes (exact), and a read-out that
is position-aligned overall keeps ≥ 95% of the predictions.""",
    ),
    (
        "code",
        """same = ft.source_equals_base_control(hyperdas, test, states=states)
for mode in same.unchanged:
    print(f"{mode:12s} unchanged {same.unchanged[mode]:.3f}, own-state mass "
          f"{same.own_state_mass[mode]:.3f}, max |Δ logit| {same.max_logit_change[mode]:.2f}")
for mode in same.unchanged:
    # exact: an example whose selection only keeps/aligns positions cannot change
    assert same.unexplained_changes[mode] == 0, f"{mode}: unexplained change"
    # and where the read-out is position-aligned overall, (almost) nothing changes
    if same.own_state_mass[mode] >= 0.95:
        assert same.unchanged[mode] >= 0.95, f"{mode}: source == base changed predictions"
""",
    ),
    (
        "md",
        """## Control 2 · a random subspace of the same rank

HyperDAS's own selection, but `R(e)` replaced by a random orthonormal basis of the same `k` (one
per example). If the learned subspace matters, Cause drops.""",
    ),
    (
        "code",
        """random_subspace = ft.random_subspace_control(hyperdas, test, SEED, states=states,
                                             reference=reference["soft"])
print(random_subspace)
assert random_subspace.orthonormality_error < 1e-4
assert random_subspace.random_subspace.cause <= random_subspace.hyperdas.cause + TOLERANCE""",
    ),
    (
        "md",
        """## Control 3 · the source's states zeroed

The hypernetwork and the interchange see the source's residual states set to zero. The
counterfactual label then has no route into the run but through the hypernetwork's own weights.
Zeroing the source *erases* the selected part of the base state, and a model that lost the
entity falls back to its prior answer ("China", "Asia"): when few labels dominate the test
examples that alone scores Cause. So the bar is the better of HyperDAS's own Cause and the best
constant answer's (`majority_label_rate`); a hypernetwork that injects labels would beat both.""",
    ),
    (
        "code",
        """zero = ft.zero_source_control(hyperdas, test, states=states,
                              reference=reference["soft"])
print(f"Cause: HyperDAS {zero.hyperdas.cause:.3f}, zero source {zero.zero_source.cause:.3f}, "
      f"best constant answer {zero.majority_label_rate:.3f}; finite: {zero.finite}")
assert zero.finite
bar = max(zero.hyperdas.cause, zero.majority_label_rate)
assert zero.zero_source.cause <= bar + TOLERANCE""",
    ),
    (
        "md",
        """## Control 4 · a source entity the model does not know

The source entity of every cause example is replaced by "Zorblaxia" (the examples are re-collated
from their text). The run must not produce the *original* counterfactual label.""",
    ),
    (
        "code",
        """nonsense = ft.nonsense_source_control(hyperdas, test, model.tokenizer)
print(nonsense)
assert nonsense.n_examples == sum(e.is_cause for b in test for e in b.examples)
assert all("Zorblaxia" in s["source_prompt"] for s in nonsense.samples)
bar = max(nonsense.original_cause, nonsense.majority_label_rate)
assert nonsense.counterfactual_label_rate <= bar + TOLERANCE""",
    ),
    (
        "md",
        """## Control 5 · the same HyperDAS against a random-init target

Same architecture, same tokenizer, no knowledge: a `LlamaForCausalLM` at SmolLM2's sizes, seeded.
HyperDAS is trained with the same config and the same number of steps (its hypernetwork starts
from the real model's weights, as the audited one did, so only the target's knowledge is gone).
Any Cause it reaches is written by the hypernetwork: with few labels dominating, steering a
random model to the most frequent answer is enough for some, so that is the bar again.""",
    ),
    (
        "code",
        """random_target = ft.random_target_control(hyperdas, data.batches["train"], test,
                                         seed=SEED, reference=reference["soft"])
rt = random_target
print(f"Cause: real target {rt.real.cause:.3f}, random target {rt.random_target.cause:.3f} "
      f"(without intervention {rt.random_target_clean.cause:.3f}), best constant answer "
      f"{rt.majority_label_rate:.3f}; Isolate on the random target {rt.random_target.isolate:.3f}")
assert len(rt.loss) == hyperdas.config.n_steps
assert rt.random_target_clean.cause <= 0.05  # a random model knows no country
assert rt.random_target.cause <= max(rt.real.cause, rt.majority_label_rate) + TOLERANCE""",
    ),
    (
        "md",
        """## Which tokens get selected

Selection mass on the entity's tokens (from the tokenizer's offsets) vs all other prompt tokens,
against the chance level (the entity tokens' share of the prompt).""",
    ),
    (
        "code",
        """stats = ft.selection_statistics(hyperdas, test, states=states)
print(f"entity tokens are {stats.base_entity_token_share:.2f} of base and "
      f"{stats.source_entity_token_share:.2f} of source prompt tokens")
for mode, read in stats.read_outs.items():
    print(f"{mode:12s} base entity share {read.base_entity_share:.2f}, source entity share "
          f"{read.source_entity_share:.2f}, "
          f"{read.replaced_per_example:.2f} base positions replaced")
    print("   top source tokens:", [(t, round(w, 2)) for t, w in read.top_source_tokens[:5]])
for read in stats.read_outs.values():
    assert 0.0 <= read.base_entity_share <= 1.0 and 0.0 <= read.source_entity_share <= 1.0
    assert read.replaced_per_example >= 0.0""",
    ),
    (
        "md",
        """## Soft vs hard read-outs

Training optimises the soft mixture; the hard read-outs keep one source token per base token. A
large positive gap means the soft score relies on mixing that the hard selection cannot
express.""",
    ),
    (
        "code",
        """gap = ft.soft_hard_gap(hyperdas, test, reference=reference)
for mode, values in gap.gaps.items():
    print(f"soft - {mode}:", {k: None if v is None else round(v, 3) for k, v in values.items()})
assert set(gap.gaps) == {"one_to_many", "one_to_one"}
assert all(v is None or -1.0 <= v <= 1.0
           for values in gap.gaps.values() for v in values.values())""",
    ),
    (
        "md",
        """## Householder vectors by attribute

`R(e) = (I - 2 v vᵀ) R0`: each example's reflection vector `v(e)`, projected on its first two
principal components and coloured by the concept (attribute) it was asked about.""",
    ),
    (
        "code",
        """house = ft.householder_vectors(hyperdas, test, states=states)
fig, ax = plt.subplots(figsize=(4.5, 4))
for i, attribute in enumerate(sorted(set(house.attributes))):
    points = house.projection[[a == attribute for a in house.attributes]]
    ax.scatter(points[:, 0], points[:, 1], s=14, color=f"C{i}", label=attribute)
ax.set_xlabel(f"PC1 ({house.explained_variance[0]:.0%})")
ax.set_ylabel(f"PC2 ({house.explained_variance[1]:.0%})")
ax.set_title("Householder vectors v(e)"); ax.legend(); fig.tight_layout()
pca_png = FIGURES / "householder_pca.png"
fig.savefig(pca_png, dpi=120)
plt.show()
print("centroid accuracy", house.centroid_accuracy, "mean cosine", house.mean_cosine)
n = sum(len(b) for b in test)
assert house.projection.shape == (n, 2) and house.vectors.shape == (n, model.cfg.d_model)
assert torch.allclose(house.vectors.norm(dim=-1), torch.ones(n), atol=1e-3)
assert pca_png.stat().st_size > 0""",
    ),
]

# ----------------------------------------------------------------------------- writer

NOTEBOOKS = {
    "02_train_hyperdas.ipynb": TRAIN,
    "03_compare.ipynb": COMPARE,
    "04_faithfulness.ipynb": FAITHFULNESS,
}


def cell_id(name: str, index: int) -> str:
    return hashlib.sha1(f"{name}:{index}".encode()).hexdigest()[:8]


def build(name: str, cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    notebook = new_notebook(
        metadata={
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        }
    )
    for index, (kind, source) in enumerate(cells):
        cell = new_markdown_cell(source) if kind == "md" else new_code_cell(source)
        cell["id"] = cell_id(name, index)
        notebook.cells.append(cell)
    nbformat.validate(notebook)
    return notebook


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        nbformat.write(build(name, cells), HERE / name)


if __name__ == "__main__":
    main()

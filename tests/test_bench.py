"""The benchmark code runs on the tiny model and returns well-formed tables (no speed asserts)."""

import json
import subprocess
import sys

import pytest
import torch

from hyperdas_tl import bench
from hyperdas_tl.bench import BenchSettings
from hyperdas_tl.bench.eval_throughput import READ_OUTS_ONE_BY_ONE, READ_OUTS_TOGETHER
from hyperdas_tl.hyperdas import HyperDAS
from hyperdas_tl.models import TINY_LLAMA_NAME, build_tiny_llama_hf, tiny_llama_config
from hyperdas_tl.provenance import cpu_flags, cpu_model

pytest.importorskip("pyvene", reason="the DAS comparison needs pyvene (the 'bench' extra)")

ROW_KEYS = {"variant", "min_s", "median_s", "ratio_min", "ratio_median"}


def build_settings(**overrides) -> BenchSettings:
    """Tiny sizes, one repetition; any field overridable by keyword."""
    defaults = dict(
        model=TINY_LLAMA_NAME,
        batch=2,
        seq=8,
        concept_len=4,
        n_hypernet_layers=2,
        repeats=1,
        hook_repeats=1,
        scaling_batches=(1, 2),
        scaling_seqs=(6, 8),
        scaling_repeats=1,
        memory_steps=1,
    )
    defaults.update(overrides)
    return BenchSettings(**defaults)


def check_rows(rows, n: int) -> None:
    assert len(rows) == n
    for row in rows:
        assert ROW_KEYS <= set(row)
        assert row["min_s"] > 0 and row["median_s"] >= row["min_s"]
    assert rows[0]["ratio_min"] > 0


@pytest.fixture(scope="module")
def hf_twin(tiny_model):
    return build_tiny_llama_hf(tiny_llama_config(), int(tiny_model.cfg.d_vocab))


def test_interleaved_runs_every_variant_in_turn():
    calls = []
    timings = bench.interleaved(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b") or {"x": 0.5}},
        repeats=2,
        warmup=1,
    )
    assert calls == ["a", "b"] * 3
    assert len(timings["a"].times_s) == 2 and timings["b"].phases_s == {"x": [0.5, 0.5]}
    rows = bench.ratio_rows(timings, "a")
    assert rows[0]["ratio_min"] == 1.0 and {r["variant"] for r in rows} == {"a", "b"}


def test_synthetic_batch_is_a_valid_intervention_batch(tiny_model):
    from hyperdas_tl.hyperdas.model import check_batch

    batch = bench.synthetic_batch(3, 9, concept_len=4, n_label=3, vocab=500)
    check_batch(batch, tiny_model)
    assert (batch.labels != -100).sum(dim=1).tolist() == [3, 3, 3]
    assert batch.base_intervenable[0].sum() == 6 and int(batch.base_entity_last[0]) == 4


def test_hook_overhead(tiny_model):
    out = bench.bench_hook_overhead(tiny_model, build_settings())
    check_rows(out["rows"], 3)
    assert out["rows"][0]["variant"] == "plain forward"
    assert "identity_overhead_min" in out and json.dumps(out)


def test_das_step_variants_compute_the_same_loss(tiny_model, hf_twin):
    out = bench.bench_das_step(tiny_model, hf_twin, build_settings(), memory=False)
    check_rows(out["rows"], len(bench.DAS_VARIANTS))
    losses = list(out["first_step_loss"].values())
    assert max(losses) - min(losses) < 1e-4, out["first_step_loss"]
    assert all("speedup_vs_pyvene_min" in row for row in out["rows"])


def test_hyperdas_step_phases_compute_the_module_loss(tiny_model):
    settings = build_settings()
    config = bench.resolved(tiny_model, settings)
    batch = bench.make_batch(tiny_model, settings)
    hyperdas = HyperDAS(tiny_model, config)
    step = bench.HyperDASStep(hyperdas, batch)
    expected = hyperdas(batch, "soft").loss.total
    assert torch.allclose(step.forward_loss(), expected)
    phases = step()
    assert set(phases) == {
        "frozen passes (base + source)",
        "hypernetwork + selection + subspace",
        "intervened suffix (L..n) + loss",
        "backward",
        "optimizer (clip + AdamW)",
    }


def test_hyperdas_step_and_start_at_layer(tiny_model):
    out = bench.bench_hyperdas_step(tiny_model, build_settings())
    check_rows(out["rows"], 3)
    assert len(out["phases"]) == 5
    assert abs(sum(p["share_of_step"] for p in out["phases"]) - 1) < 1e-9
    start = out["start_at_layer"]
    check_rows(start["rows"], 3)
    for diff in start["max_abs_logit_diff_vs_run_from_layer"].values():
        assert diff < 1e-4
    assert not any(p.requires_grad for p in tiny_model.parameters())  # target stays frozen


def test_eval_throughput(tiny_model):
    out = bench.bench_eval_throughput(tiny_model, build_settings())
    check_rows(out["rows"], 6)
    assert {READ_OUTS_ONE_BY_ONE, READ_OUTS_TOGETHER} <= {r["variant"] for r in out["rows"]}
    assert all(row["examples_per_s"] > 0 for row in out["rows"])


def test_scaling(tiny_model):
    out = bench.bench_scaling(tiny_model, build_settings())
    assert [(r["axis"], r["batch"], r["seq"]) for r in out["rows"]] == [
        ("batch", 1, 8),
        ("batch", 2, 8),
        ("seq", 2, 6),
        ("seq", 2, 8),
    ]
    assert all(r["hyperdas_step_median_s"] > 0 for r in out["rows"])


def test_memory_check_matches_exact_parameter_counts(tiny_model):
    out = bench.memory_check(tiny_model, build_settings())
    estimate, measured = out["estimate"], out["measured"]
    assert estimate["params"]["target"] == measured["target_params"]
    assert estimate["params"]["trainable"] == measured["hyperdas_trainable_params"]
    assert measured["prefix_states_bytes"] == estimate["bytes"]["frozen prefix states"]
    assert measured["suffix_activations_bytes"] > 0


def test_memory_probe_in_a_subprocess():
    probe = bench.memory_probe_subprocess("das_ours", build_settings())
    assert probe["variant"] == "das_ours"
    assert probe["peak_step_delta_mb"] >= 0 and probe["rss_before_steps_mb"] > 0


def test_main_writes_json_and_markdown(tmp_path, tiny_model, monkeypatch):
    monkeypatch.setattr("hyperdas_tl.bench.runner.load_target", lambda name: tiny_model)
    out = tmp_path / "bench.json"
    argv = ["--model", TINY_LLAMA_NAME, "--batch", "2", "--seq", "8", "--concept-len", "4"]
    argv += ["--n-hypernet-layers", "2", "--repeats", "1", "--hook-repeats", "1", "--no-memory"]
    argv += ["--out", str(out)]
    argv += ["--sections", "hook_overhead", "hyperdas_step", "memory"]
    assert bench.main(argv) == 0
    results = json.loads(out.read_text())
    assert {"machine", "settings", "hook_overhead", "hyperdas_step", "memory"} <= set(results)
    assert len(results["machine"]["loadavg_start"]) == 3 and "loadavg_end" in results["machine"]
    markdown = out.with_suffix(".md").read_text()
    assert "## 1. Hook overhead" in markdown and "Meta-Llama-3-8B" in markdown


def test_machine_info_names_the_cpu_and_its_bf16_support():
    info = bench.machine_info(BenchSettings())
    assert info["cpu"] == cpu_model() and info["bf16_cpu_flags"] == cpu_flags()
    assert isinstance(info["cpu"], str)
    assert set(info["bf16_cpu_flags"]) <= {"amx_bf16", "amx_tile", "avx512_bf16"}


def test_bench_exports_resolve_and_precision_loads_only_the_timing_module():
    for name, module in bench._EXPORTS.items():
        assert getattr(bench, name) is getattr(sys.modules[module], name), name
    code = (
        "import sys, hyperdas_tl.precision\n"
        "print(sorted(m for m in sys.modules if m.startswith('hyperdas_tl.bench')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['hyperdas_tl.bench', 'hyperdas_tl.bench.timing']"


def test_the_bench_command_names_bad_input_in_one_line(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "hyperdas_tl.bench", "--model", "tiny-llama", "--layer", "99",
         "--sections", "hook_overhead", "--no-memory", "--no-scaling", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1].startswith("error: layer 99 is out of range"), done.stderr
    assert "Traceback" not in done.stderr and not out.exists()

"""The benchmark's results as markdown tables, and the JSON + markdown files."""

import json
from pathlib import Path
from typing import Any


def _f(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}f}"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def to_markdown(results: dict[str, Any]) -> str:
    """The results as markdown tables (what ``main`` prints and saves beside the JSON)."""
    m, s = results["machine"], results["settings"]
    lines = [
        f"# hyperdas_tl benchmarks: {s['model']}, CPU",
        "",
        f"Machine: {m['processor']}, {m['cpu_count']} CPUs, torch {m['torch']} with "
        f"{m['torch_threads']} thread(s), Python {m['python']}. Load average (1/5/15 min) "
        f"at start {', '.join(_f(x, 2) for x in m['loadavg_start'])}"
        + (
            f", at end {', '.join(_f(x, 2) for x in m['loadavg_end'])}"
            if "loadavg_end" in m
            else ""
        )
        + (f"; run took {m['wall_s']:.0f} s." if "wall_s" in m else "."),
        f"Batch {s['batch']} x {s['seq']} positions (base and source), concept "
        f"{s['concept_len']} tokens, {s['repeats']} interleaved repetitions after one warm-up "
        f"({s['hook_repeats']} for the hook overhead, {s['scaling_repeats']} per scaling cell); "
        "ratios are of mins and of medians.",
        "",
    ]

    def ratio_table(rows: list[dict[str, Any]], extra: tuple[str, ...] = ()) -> list[str]:
        labels = {
            "speedup_vs_pyvene_min": "speed-up vs pyvene (min)",
            "speedup_vs_pyvene_median": "speed-up vs pyvene (median)",
            "examples_per_s": "examples/s (median)",
        }
        headers = ["variant", "min s", "median s", "ratio (min)", "ratio (median)"]
        headers += [labels.get(key, key) for key in extra]
        body = []
        for r in rows:
            cells = [r["variant"], _f(r["min_s"]), _f(r["median_s"])]
            cells += [_f(r["ratio_min"]), _f(r["ratio_median"])]
            for key in extra:
                cells.append(_f(r[key], 1) if key == "examples_per_s" else _f(r[key], 2))
            body.append(cells)
        return _table(headers, body)

    if "hook_overhead" in results:
        h = results["hook_overhead"]
        lines += [
            f"## 1. Hook overhead (no grad, layer {h['layer']}, k {h['k']}, shape {h['shape']})",
            "",
            *ratio_table(h["rows"]),
            f"Identity hook overhead: {100 * h['identity_overhead_min']:+.1f} % (min), "
            f"{100 * h['identity_overhead_median']:+.1f} % (median); goal <= 3 %.",
            "",
        ]
    if "das_step" in results:
        d = results["das_step"]
        lines += [
            f"## 2. DAS training step (layer {d['layer']}, k {d['k']}, shape {d['shape']}; "
            "ratio = time / pyvene's)",
            "",
            *ratio_table(d["rows"], ("speedup_vs_pyvene_min", "speedup_vs_pyvene_median")),
        ]
        if "memory" in d:
            lines += [
                "Peak memory of a step above the settled process (fresh process per variant):",
                "",
                *_table(
                    ["variant", "peak step delta MB", "RSS before steps MB"],
                    [
                        [v, _f(p["peak_step_delta_mb"], 1), _f(p["rss_before_steps_mb"], 1)]
                        for v, p in d["memory"].items()
                    ],
                ),
            ]
    if "hyperdas_step" in results:
        h = results["hyperdas_step"]
        lines += [
            f"## 3. HyperDAS training step (layer {h['layer']}, k {h['k']}, N "
            f"{h['n_hypernet_layers']}, shape {h['shape']}, "
            f"{h['trainable_params'] / 1e6:.1f} M trainable parameters)",
            "",
            *ratio_table(h["rows"]),
            f"HyperDAS step / plain fwd+bwd: {_f(h['step_vs_plain_weight_grads_min'], 2)}x "
            f"(min), {_f(h['step_vs_plain_weight_grads_median'], 2)}x (median) against weight "
            f"grads; {_f(h['step_vs_plain_input_grads_min'], 2)}x / "
            f"{_f(h['step_vs_plain_input_grads_median'], 2)}x against input grads only. "
            "Goal <= 2.5x.",
            "",
            *_table(
                ["phase", "min s", "median s", "share of step (median)"],
                [
                    [
                        p["phase"],
                        _f(p["min_s"]),
                        _f(p["median_s"]),
                        f"{100 * p['share_of_step']:.0f} %",
                    ]
                    for p in h["phases"]
                ],
            ),
            "Intervened pass (forward + backward into the basis), ratio = time / run_from_layer:",
            "",
            *ratio_table(h["start_at_layer"]["rows"]),
        ]
    if "eval_throughput" in results:
        e = results["eval_throughput"]
        lines += [
            f"## 4. Evaluation throughput (shape {e['shape']})",
            "",
            *ratio_table(e["rows"], ("examples_per_s",)),
        ]
    if "scaling" in results:
        c = results["scaling"]
        lines += [
            f"## 5. Scaling (layer {c['layer']}, k {c['k']}; median s per training step)",
            "",
            *_table(
                ["varied", "batch", "seq", "DAS step s", "HyperDAS step s", "HyperDAS ms/example"],
                [
                    [
                        r["axis"],
                        str(r["batch"]),
                        str(r["seq"]),
                        _f(r["das_step_median_s"]),
                        _f(r["hyperdas_step_median_s"]),
                        _f(r["hyperdas_ms_per_example"], 0),
                    ]
                    for r in c["rows"]
                ],
            ),
        ]
    if "memory" in results:
        mem = results["memory"]
        lines += ["## 6. Memory", ""]
        for estimate in mem["llama3_8b"].values():
            lines += [estimate["markdown"], ""]
        check = mem["benchmarked_model"]
        est, meas = check["estimate"], check["measured"]
        lines += [
            f"Estimate vs measured on {s['model']} (batch {s['batch']}, seq {s['seq']}, float32):",
            "",
            *_table(
                ["quantity", "estimate", "measured"],
                [
                    [
                        "target params",
                        str(est["params"]["target"]),
                        str(meas["target_params"]),
                    ],
                    [
                        "HyperDAS trainable params",
                        str(est["params"]["trainable"]),
                        str(meas["hyperdas_trainable_params"]),
                    ],
                    *[
                        [
                            f"{label} MB",
                            _f(est["bytes"][label] / 1e6, 1),
                            _f(meas[key] / 1e6, 1),
                        ]
                        for label, key in (
                            ("frozen prefix states", "prefix_states_bytes"),
                            ("hypernetwork activations", "hypernetwork_activations_bytes"),
                            ("intervened suffix activations", "suffix_activations_bytes"),
                        )
                    ],
                ],
            ),
        ]
        if "hyperdas_step_probe" in mem:
            probe = mem["hyperdas_step_probe"]
            parts = est["bytes"]
            step_bytes = parts["activations (subtotal)"] + parts["gradients"]
            lines += [
                f"Peak RSS of a real {s['model']} HyperDAS step above the settled process "
                f"(weights and AdamW state already allocated by a warm-up step): "
                f"{_f(probe['peak_step_delta_mb'], 1)} MB. The estimate's activations + "
                f"gradients: {_f(step_bytes / 1e6, 1)} MB, an upper bound: it counts them all "
                "alive at once, while backward frees the suffix activations before most "
                "gradients (the hypernetwork's) exist.",
                "",
            ]
    return "\n".join(lines)


def write_results(results: dict[str, Any], out: Path) -> str:
    """Write ``results`` to ``out`` (JSON) and :func:`to_markdown` beside it (``.md``); returns
    the markdown."""
    markdown = to_markdown(results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown + "\n")
    return markdown

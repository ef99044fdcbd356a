"""Load time (first = GGUF conversion, cached) and forward time of SmolLM2: TransformerLens vs HF.

python analyses/foundation_timings.py   # writes analyses/results/foundation_timings.json
"""

import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from hyperdas_tl.cli.entry import run_script
from hyperdas_tl.models import load_model, load_smollm2_hf

RESULTS = Path(__file__).parent / "results" / "foundation_timings.json"
PROMPTS = [
    f"{city} is a city in the country of"
    for city in [
        "Paris", "Tokyo", "Berlin", "Madrid", "Rome", "Cairo", "Lima", "Oslo",
        "Nairobi", "Toronto", "Sydney", "Mumbai", "Seoul", "Lisbon", "Dublin", "Vienna",
        "Prague", "Warsaw", "Athens", "Ankara", "Tehran", "Bangkok", "Hanoi", "Manila",
        "Jakarta", "Santiago", "Bogota", "Quito", "Havana", "Accra", "Dakar", "Kyiv",
    ]
]  # fmt: skip


def interleaved(fns: dict, repeats: int = 5) -> dict[str, list[float]]:
    """Time each function ``repeats`` times, alternating between them (after one warm-up)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    results: dict[str, object] = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}",
        "threads": torch.get_num_threads(),
        "loadavg_start": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory() as cache:
        os.environ["HYPERDAS_TL_CACHE"] = cache
        start = time.perf_counter()
        load_model("smollm2-135m", device="cpu")
        results["load_first_s"] = time.perf_counter() - start
        start = time.perf_counter()
        model = load_model("smollm2-135m", device="cpu")
        results["load_cached_s"] = time.perf_counter() - start
        hf, tokenizer = load_smollm2_hf()
    enc = tokenizer(PROMPTS, return_tensors="pt", padding=True)
    with torch.no_grad():
        times = interleaved(
            {
                "tl": lambda: model(enc.input_ids, attention_mask=enc.attention_mask),
                "hf": lambda: hf(**enc),
            }
        )
    tl_times, hf_times = times["tl"], times["hf"]
    results["forward_32_prompts"] = {
        "shape": list(enc.input_ids.shape),
        "transformerlens_s": {"min": min(tl_times), "median": statistics.median(tl_times)},
        "hf_s": {"min": min(hf_times), "median": statistics.median(hf_times)},
        "ratio_min": min(tl_times) / min(hf_times),
    }
    results["loadavg_end"] = os.getloadavg()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    raise SystemExit(run_script(main))

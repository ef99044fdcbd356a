"""The pure parts of analyses/ scripts, on the results committed beside them."""

import ast
import importlib.util
import json
import re
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest

from hyperdas_tl.cli.entry import run_script
from hyperdas_tl.cli.parser import EXIT_ERROR
from hyperdas_tl.data.ravel import Template

ANALYSES = Path(__file__).resolve().parents[1] / "analyses"
RESULTS = ANALYSES / "results"


def script(name: str):
    spec = importlib.util.spec_from_file_location(name, ANALYSES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_faithfulness_markdown_renders_the_committed_report():
    report = json.loads((RESULTS / "faithfulness_smollm2.json").read_text())
    markdown = script("run_faithfulness").to_markdown(report)
    assert "(layer 6, k 18, 400 steps)" in markdown
    assert "## test_entity (96 examples)" in markdown and "## test_context" in markdown


def test_merged_summary_nests_differences_by_domain_and_refuses_a_domain_twice(tmp_path):
    merge = script("merge_benchmark_domains").merge
    folder = RESULTS / "benchmark_smollm2_city_unbucketed"
    summary = json.loads((folder / "summary.json").read_text())
    merged = merge({folder: summary}, tmp_path)
    assert merged["city"] == summary["city"]
    assert merged["differences"] == {"city": summary["differences"]}
    with pytest.raises(ValueError, match="domain 'city' is in"):
        merge({folder: summary, RESULTS / "benchmark_smollm2_city": summary}, tmp_path)


def test_run_benchmark_refuses_emulated_bf16_in_one_line_before_the_model_loads(
    tmp_path, monkeypatch, capsys
):
    import hyperdas_tl.precision as precision
    import hyperdas_tl.run_start as run_start

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the precision was refused")

    monkeypatch.setattr(precision, "cpu_flags", lambda: ["avx2"])
    monkeypatch.setattr(run_start, "load_model", no_model)
    argv = ["--source", "geonames", "--precision", "bfloat16", "--device", "cpu",
            "--out", str(tmp_path / "out")]  # fmt: skip
    assert run_script(partial(script("run_benchmark").main, argv)) == EXIT_ERROR
    message = capsys.readouterr().err
    assert message.startswith("error: precision bfloat16 refused on cpu")
    assert message.count("\n") == 1 and "--allow-emulated-bf16" in message


def test_run_benchmark_refuses_bad_settings_before_the_model_loads(tmp_path, monkeypatch, capsys):
    import hyperdas_tl.run_start as run_start

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the settings were checked")

    monkeypatch.setattr(run_start, "start_run", no_model)
    argv = ["--source", "geonames", "--das-lrs", "0.01", "0.01", "--out", str(tmp_path / "o")]
    assert run_script(partial(script("run_benchmark").main, argv)) == EXIT_ERROR
    assert capsys.readouterr().err.startswith("error: das_lrs repeat a learning rate")
    argv = ["--source", "geonames", "--hyperdas-isolate-weight", "-1", "--out", str(tmp_path)]
    assert run_script(partial(script("run_benchmark").main, argv)) == EXIT_ERROR
    assert "isolate_weight" in capsys.readouterr().err


def test_run_benchmark_passes_the_hyperdas_loss_weights_on(tmp_path):
    module = script("run_benchmark")
    default = module.compare_settings(module.parse_args(["--out", str(tmp_path)]))
    assert (default.hyperdas.training.cause_weight, default.hyperdas.training.isolate_weight) == (
        3.5, 0.5
    )  # fmt: skip
    argv = [
        "--hyperdas-cause-weight",
        "1",
        "--hyperdas-isolate-weight",
        "1",
        "--out",
        str(tmp_path),
    ]
    equal = module.compare_settings(module.parse_args(argv))
    assert (equal.hyperdas.training.cause_weight, equal.hyperdas.training.isolate_weight) == (1, 1)


def test_every_script_runs_inside_the_error_boundary():
    for path in sorted(ANALYSES.glob("*.py")):
        tree = ast.parse(path.read_text())
        guards = [node for node in tree.body if isinstance(node, ast.If)
                  and ast.unparse(node.test) == "__name__ == '__main__'"]  # fmt: skip
        assert len(guards) == 1, f"{path.name}: no (or several) __main__ guards"
        body = [ast.unparse(statement) for statement in guards[0].body]
        assert body == ["raise SystemExit(run_script(main))"], f"{path.name}: {body}"


def test_a_script_refusing_its_input_says_so_in_one_line(tmp_path):
    folders = [RESULTS / "benchmark_smollm2_city", RESULTS / "benchmark_smollm2_city_unbucketed"]
    out = tmp_path / "merged.json"
    done = subprocess.run(
        [sys.executable, str(ANALYSES / "merge_benchmark_domains.py"), *map(str, folders),
         "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == EXIT_ERROR, done.stderr
    assert done.stderr.startswith("error: domain 'city' is in"), done.stderr
    assert done.stderr.count("\n") == 1 and not out.exists()


def test_prefix_share_counts_the_tokens_every_entity_shares_before_it():
    class Domain:
        attributes = ("Country",)

        def templates_for(self, attribute):
            return [Template("The city %s is in", "Country", "train")]

        def has_value(self, entity, attribute):
            return entity != "Atlantis"

    def tokenizer(text):  # words keep their leading space, as SmolLM2's BPE does
        return {"input_ids": re.findall(r" ?[^ ]+| $", text)}

    share = script("instance_decoding_profile").prefix_share(
        tokenizer, Domain(), ["Paris", "Oslo", "Atlantis"]
    )
    # "The", " city" | " Paris", " is", " in": the prefix's trailing " " merges into " Paris"
    assert share == {"prompts": 2, "mean_tokens": 5.0, "shared_prefix_fraction": 0.4,
                     "boundary_merge_rate": 1.0}  # fmt: skip


def test_batched_prompt_tokens_counts_a_shared_prefix_once():
    vocab: dict[str, int] = {}

    def tokenizer(texts):
        return {
            "input_ids": [[vocab.setdefault(w, len(vocab) + 1) for w in t.split()] for t in texts]
        }

    prompts = ["a b c X", "Z d e", "a b c Y", "W d e"]
    counts = script("instance_decoding_profile").batched_prompt_tokens(tokenizer, prompts, 2)
    # by length: [Z d e, W d e] 2 x 3 + [a b c X, a b c Y] 2 x 4 = 14; by ids: "a b c" once
    # + 2 x 1, then the "d e" rows share nothing leading: 2 x 3 -> 11
    assert counts == {"prompts": 4, "batch_size": 2, "real_tokens": 14, "kv_cached_tokens": 14,
                      "prefix_cached_tokens": 11, "prefix_cached_fraction": 11 / 14}  # fmt: skip


def test_readme_tables_show_one_seed_without_a_spread():
    """A method run with one seed has no sd across seeds (physical_object at seed 1)."""
    spread = script("benchmark_readme_tables").spread
    assert spread({"over_seeds": {"disentangle": {"mean": 0.4, "sd": None}}}) == "0.400 (1 seed)"
    assert spread({"over_seeds": {"disentangle": {"mean": 0.4, "sd": 0.05}}}) == "0.400 ± 0.050"
    assert spread({}) == "—"

"""The command line: answers before heavy imports, one error line per failure, pre-flight
before the model loads, the lock on --out, and SIGKILL + --resume == an uninterrupted run."""

import json
import os
import random
import re
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import torch
from oracle_run import fail_evaluation_on, prime_instance, use_oracle_cache, write_ravel
from safetensors.torch import load_file

from hyperdas_tl import cli
from hyperdas_tl.cli import build_parser, main, profile_from_args

HEAVY = ("torch", "transformers", "transformer_lens")
REPO_ROOT = Path(__file__).resolve().parents[1]


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess: this checkout first on the path, one thread."""
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", **extra}


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def no_model(*args, **kwargs):
    raise AssertionError("the model was loaded before the bad input was found")


@pytest.fixture
def model_never_loads(monkeypatch):
    import hyperdas_tl.hyperdas.run as run_module
    import hyperdas_tl.run_start as run_start

    monkeypatch.setattr(run_start, "load_model", no_model)  # train and demo
    monkeypatch.setattr(run_module, "load_model", no_model)  # evaluate


# --- fast answers --------------------------------------------------------------------------


def test_help_runs_without_heavy_imports():
    script = (
        "import runpy, sys\n"
        "sys.argv = ['hyperdas_tl', 'train', '--help']\n"
        "try:\n"
        "    runpy.run_module('hyperdas_tl', run_name='__main__', alter_sys=True)\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        f"print('heavy:', sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=subprocess_env(),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "--checkpoint-every" in done.stdout and "--resume" in done.stdout
    assert "heavy: []" in done.stdout
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "hyperdas_tl", "--help"], env=subprocess_env(),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0 and "train" in done.stdout
    assert time.perf_counter() - start < 2.0


def test_bad_options_get_one_error_line_before_any_heavy_import(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    cases = {
        "negative steps": (["train", "--steps", "-1"], "argument --steps: must be a positive"),
        "no attributes": (["train", "--attributes"], "argument --attributes: expected at least"),
        "empty attribute": (["train", "--attributes", " "], "attribute names must not be empty"),
        "k = 0": (["train", "--k", "0"], "argument --k: must be a positive integer, got '0'"),
        "checkpoint every 0": (["train", "--checkpoint-every", "0"], "--checkpoint-every"),
        "bad weight": (["train", "--null-init-weight", "1"], "must be a number in (0, 1)"),
        "nan lr": (["train", "--lr", "nan"], "argument --lr: must be a finite number"),
        "unknown model": (["train", "--model", "gpt-5"], "argument --model: invalid choice"),
        "out is a file": (["train", "--out", str(a_file)], f"--out {a_file} is a file"),
        "no ravel": (["train", "--ravel", str(tmp_path / "nope.tgz")], "does not exist"),
        "domain": (["train", "--domain", "verb"], "geonames data has only the 'city' domain"),
        "evaluate": (["evaluate", str(tmp_path / "nope")], "is not a folder"),
    }
    script = (
        "import contextlib, io, json, sys\n"
        "from hyperdas_tl.cli import main\n"
        f"cases = {json.dumps({k: v[0] for k, v in cases.items()})}\n"
        "out = {}\n"
        "for name, argv in cases.items():\n"
        "    err = io.StringIO()\n"
        "    with contextlib.redirect_stderr(err):\n"
        "        try:\n"
        "            code = main(argv)\n"
        "        except SystemExit as exit:\n"
        "            code = exit.code\n"
        "    out[name] = [code, err.getvalue()]\n"
        f"out['heavy'] = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=subprocess_env(),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout)
    assert answers.pop("heavy") == []
    for name, (code, stderr) in answers.items():
        assert code == 2, (name, stderr)
        assert len(stderr.splitlines()) == 1 and stderr.startswith("error: "), (name, stderr)
        assert cases[name][1] in stderr, (name, stderr)


def test_emulated_bf16_is_refused_before_the_model_loads(tmp_path, monkeypatch, capsys,
                                                         model_never_loads):  # fmt: skip
    import hyperdas_tl.precision as precision

    monkeypatch.setattr(precision, "cpu_flags", lambda: ["avx2"])
    for command in (["train"], ["demo"]):
        argv = [*command, "--precision", "bfloat16", "--device", "cpu", "--out",
                str(tmp_path / command[0])]  # fmt: skip
        assert main(argv) == 2
        stderr = capsys.readouterr().err
        assert len(stderr.splitlines()) == 1, stderr
        assert "precision bfloat16 refused on cpu" in stderr and "x the float32 time" in stderr


def test_hard_coded_choices_agree_with_the_library():
    from hyperdas_tl.data.ravel import RAVEL_DOMAINS
    from hyperdas_tl.hyperdas.run import PROFILES
    from hyperdas_tl.models import KNOWN_MODELS, SMOLLM2_NAME
    from hyperdas_tl.precision import PRECISIONS

    assert cli.MODEL_CHOICES == KNOWN_MODELS and cli.SMOLLM2_NAME == SMOLLM2_NAME
    assert cli.PROFILE_CHOICES == tuple(sorted(PROFILES))
    assert cli.RAVEL_DOMAIN_CHOICES == RAVEL_DOMAINS
    assert cli.PRECISION_CHOICES == PRECISIONS


def test_checkpoint_every_eval_modes_and_precision_reach_the_profile():
    args = build_parser().parse_args(
        ["train", "--checkpoint-every", "5", "--eval-modes", "teacher_forced", "--precision",
         "float32"]
    )  # fmt: skip
    profile = profile_from_args(args)
    assert profile.hyperdas.training.checkpoint_every == 5
    assert profile.eval_modes == ("teacher_forced",) and profile.precision == "float32"
    default = profile_from_args(build_parser().parse_args(["train"]))
    assert default.hyperdas.training.checkpoint_every is None


def test_train_options_are_generated_from_the_config_dataclasses(capsys):
    from dataclasses import replace

    from hyperdas_tl.cli.options import parse_options
    from hyperdas_tl.hyperdas.run import PROFILES

    small = PROFILES["small"]
    argv = ["--profile", "small", "--steps", "7", "--selection-score", "cosine",
            "--data-seed", "3", "--weight-decay", "0"]  # fmt: skip
    options = parse_options("train", argv, prog="t")
    assert options.training == replace(small.hyperdas.training, n_steps=7, weight_decay=0.0)
    assert options.architecture == replace(small.hyperdas.architecture, selection_score="cosine")
    assert options.data == replace(small.data, seed=3)
    with pytest.raises(SystemExit) as exit:
        parse_options("train", ["--help"], prog="t")
    assert exit.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    for flag in ("--steps", "--k", "--n-hypernet-layers", "--null-init-weight", "--r0-lr",
                 "--warmup-steps", "--no-cache-states", "--ravel", "--train-pairs"):  # fmt: skip
        assert flag in help_text, flag
    assert "AdamW weight decay" in help_text  # a field docstring is the help
    assert "--target-model" not in help_text  # set by --model, recorded by the model


def test_demo_and_evaluate_options_fail_in_one_line(tmp_path):
    cases = {
        "no seeds": (["demo", "--seeds"], "argument --seeds: expected at least one argument"),
        "bad seed": (["demo", "--seeds", "-1"], "argument --seeds: must be an integer >= 0"),
        "no checkpoint": (["evaluate"], "the following arguments are required: checkpoint"),
        "unknown": (["train", "--bogus", "1"], "unrecognized arguments: --bogus 1"),
    }
    for name, (argv, expected) in cases.items():
        done = subprocess.run([sys.executable, "-m", "hyperdas_tl", *argv], env=subprocess_env(),
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 2, (name, done.stderr)
        assert len(done.stderr.splitlines()) == 1 and expected in done.stderr, (name, done.stderr)


# --- pre-flight through the CLI (the model must not load) ------------------------------------


def test_unwritable_or_full_out_is_refused_before_the_model_loads(
    tmp_path, monkeypatch, capsys, model_never_loads
):
    import hyperdas_tl.run_dir as run_dir

    locked = tmp_path / "read-only"
    locked.mkdir()
    locked.chmod(0o555)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    with monkeypatch.context() as patch:
        if os.geteuid() == 0:  # root writes anywhere: make the write probe fail as it would
            patch.setattr(run_dir.tempfile, "mkstemp", refuse)
        assert main(["train", "--model", "tiny-llama", "--out", str(locked)]) == 2
    assert error_lines(capsys.readouterr().err) == [
        f"error: --out {locked} is not writable (Permission denied)"
    ]
    locked.chmod(0o755)
    usage = run_dir.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(run_dir.shutil, "disk_usage", lambda path: usage._replace(free=5 * 2**20))
    assert main(["train", "--model", "tiny-llama", "--out", str(tmp_path / "full")]) == 2
    assert "has only 5 MiB free; a run needs at least 100 MiB" in capsys.readouterr().err


def test_rerun_and_other_model_refusals_name_the_flags(
    tiny_model, tmp_path, capsys, model_never_loads
):
    from hyperdas_tl.hyperdas.checkpoint import save_checkpoint
    from hyperdas_tl.hyperdas.config import HyperDASConfig
    from hyperdas_tl.hyperdas.model import HyperDAS
    from hyperdas_tl.hyperdas.train import build_optimizer

    config = HyperDASConfig.build(target_model="smollm2-135m", layer=2, k=4, n_hypernet_layers=1)
    model = HyperDAS(tiny_model, config)
    save_checkpoint(
        tmp_path / "checkpoint", model, optimizer=build_optimizer(model, config.training)
    )
    assert main(["train", "--model", "tiny-llama", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert error_lines(err) == [
        f"error: {tmp_path} already holds a checkpoint ({tmp_path / 'checkpoint'}); pass "
        "--resume (resume=True) to continue it, or choose another --out"
    ]
    assert main(["train", "--model", "tiny-llama", "--resume", "--out", str(tmp_path)]) == 2
    assert error_lines(capsys.readouterr().err) == [
        f"error: {tmp_path / 'checkpoint'} was trained on model 'smollm2-135m', not "
        "'tiny-llama'; pass --model smollm2-135m to resume it, or choose another --out"
    ]


def test_data_errors_name_the_file_before_the_model_loads(tmp_path, capsys, model_never_loads):
    folder = write_ravel(tmp_path / "ravel")
    truncated = tmp_path / "data.tgz"
    with tarfile.open(truncated, "w:gz") as tar:
        tar.add(folder / "data", arcname="data")
    blob = truncated.read_bytes()
    truncated.write_bytes(blob[: len(blob) // 3])
    argv = ["train", "--model", "tiny-llama", "--source", "ravel", "--out", str(tmp_path / "o")]
    assert main([*argv, "--ravel", str(truncated)]) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert line.startswith(f"error: RAVEL archive {truncated} is truncated, corrupt or not a .tgz")
    (folder / "data" / "ravel_city_entity_attributes.json").write_text("{oops")
    assert main([*argv, "--ravel", str(folder)]) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert line.startswith(
        f"error: {folder / 'data' / 'ravel_city_entity_attributes.json'} is not valid JSON"
    )


def test_a_second_run_on_the_same_out_is_refused_naming_the_first(tmp_path, capsys):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from hyperdas_tl.run_dir import run_lock\n"
         f"with run_lock({str(tmp_path)!r}):\n"
         "    print('locked', flush=True)\n"
         "    time.sleep(60)\n"],
        env=subprocess_env(), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["train", "--model", "tiny-llama", "--out", str(tmp_path)]) == 2
        (line,) = error_lines(capsys.readouterr().err)
        assert line.startswith(
            f"error: --out {tmp_path} is in use by another hyperdas_tl run (PID {holder.pid}, "
        )
    finally:
        holder.kill()
        holder.wait()


def test_unexpected_errors_are_one_line_and_debug_shows_the_traceback(
    tmp_path, monkeypatch, capsys
):
    import hyperdas_tl.hyperdas.run as run_module

    def boom(*args, **kwargs):
        raise RuntimeError("something broke\nacross two lines")

    monkeypatch.setattr(run_module, "train_and_evaluate", boom)
    argv = ["train", "--model", "tiny-llama", "--out", str(tmp_path)]
    assert main(argv) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: RuntimeError: something broke across two lines (run with --debug for the traceback)"
    ]
    assert main([*argv, "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "in boom" in err
    assert err.splitlines()[-1] == "error: RuntimeError: something broke across two lines"


def test_run_script_lends_scripts_the_boundary_and_keeps_bugs_tracebacks(capsys):
    from hyperdas_tl.cli.entry import run_script

    def bad_input():
        raise FileNotFoundError("no summary.json in runs/x\n(not a finished run folder)")

    def interrupted():
        raise KeyboardInterrupt

    def bug():
        raise RuntimeError("a bug")

    assert run_script(lambda: None) == 0
    assert run_script(lambda: 3) == 3
    assert run_script(bad_input) == 2
    assert run_script(interrupted) == 130
    assert capsys.readouterr().err.splitlines() == [
        "error: no summary.json in runs/x (not a finished run folder)",
        "error: interrupted",
    ]
    with pytest.raises(RuntimeError, match="a bug"):
        run_script(bug)


def test_a_late_failure_says_which_results_were_kept(tiny_model, tmp_path, monkeypatch, capsys):
    import hyperdas_tl.run_start as run_start

    ravel = write_ravel(tmp_path / "ravel")
    use_oracle_cache(tmp_path / "cache", monkeypatch)
    monkeypatch.setattr(run_start, "load_model", lambda *a, **k: tiny_model)
    fail_evaluation_on("test_context", monkeypatch)
    out = tmp_path / "out"
    code = main([*small_run_args(ravel, steps=2), "--out", str(out)])
    assert code == 2
    assert error_lines(capsys.readouterr().err) == [
        "error: label ' --' is empty after normalisation (the results of the finished splits "
        f"test_entity are kept in {out / 'results.json'})"
    ]
    assert json.loads((out / "results.json").read_text())["finished_splits"] == ["test_entity"]


# --- SIGKILL at random moments, --resume: the same final checkpoint ---------------------------


def small_run_args(ravel: Path, *, steps: int) -> list[str]:
    return ["train", "--model", "tiny-llama", "--profile", "small", "--source", "ravel",
            "--ravel", str(ravel), "--layer", "2", "--k", "4", "--n-hypernet-layers", "1",
            "--steps", str(steps), "--batch-size", "4", "--train-pairs", "8",
            "--eval-pairs", "4", "--eval-modes", "teacher_forced", "--precision", "float32",
            "--seed", "1"]  # fmt: skip


def saved_step(out: Path) -> int:
    """The step of the newest checkpoint copy in ``out`` (read only: no recovery)."""
    for name in ("checkpoint", "checkpoint.old"):
        try:
            return int(json.loads((out / name / "trainer_state.json").read_text())["step"])
        except (OSError, ValueError, KeyError):
            continue
    return 0


def start_cli(argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    with open(log, "ab") as handle:
        return subprocess.Popen([sys.executable, "-m", "hyperdas_tl", *argv], env=env,
                                stdout=handle, stderr=subprocess.STDOUT)  # fmt: skip


def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_checkpoint(
    tmp_path, monkeypatch
):
    ravel = write_ravel(tmp_path / "ravel")
    cache = use_oracle_cache(tmp_path / "cache", monkeypatch)
    argv = [*small_run_args(ravel, steps=30), "--checkpoint-every", "1"]
    prime_instance(profile_from_args(build_parser().parse_args(argv)))
    env = subprocess_env(HYPERDAS_TL_CACHE=str(cache))
    log = tmp_path / "cli.log"

    reference = tmp_path / "reference"
    done = start_cli([*argv, "--out", str(reference)], log, env)
    assert done.wait(timeout=300) == 0, log.read_text()[-3000:]
    train_seconds = float(re.search(r"'train': ([0-9.e-]+)", log.read_text()).group(1))
    step_seconds = train_seconds / 30  # a step and its checkpoint

    seed = random.randrange(2**32)
    rng = random.Random(seed)
    out, kills = tmp_path / "killed", []
    for attempt in range(3):
        before = saved_step(out)
        run = start_cli([*argv, "--out", str(out), *(["--resume"] if attempt else [])], log, env)
        deadline = time.monotonic() + 300
        while saved_step(out) <= before:  # wait until this run is training (and saving)
            assert run.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the run never saved a checkpoint"
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 6 * step_seconds))
        run.send_signal(signal.SIGKILL)
        assert run.wait(timeout=60) == -signal.SIGKILL, f"run ended before the kill (seed {seed})"
        kills.append((saved_step(out), sorted(p.name for p in out.iterdir())))
    assert kills[-1][0] < 30, f"the kills came too late to test anything: {kills}"

    run = start_cli([*argv, "--out", str(out), "--resume"], log, env)
    assert run.wait(timeout=300) == 0, log.read_text()[-3000:]
    assert "Traceback" not in log.read_text()

    final, expected = out / "checkpoint", reference / "checkpoint"
    for name in ("weights.safetensors", "optimizer.safetensors"):
        got, want = load_file(final / name), load_file(expected / name)
        assert got.keys() == want.keys()
        for key in want:
            assert torch.equal(got[key], want[key]), (name, key, seed, kills)
    for name in ("trainer_state.json", "config.json"):
        assert json.loads((final / name).read_text()) == json.loads((expected / name).read_text())
    results = [json.loads((d / "results.json").read_text()) for d in (out, reference)]
    assert results[0]["results"] == results[1]["results"] and results[0]["complete"]
    assert not (out / "checkpoint.tmp").exists() and not (out / "checkpoint.old").exists()


def test_evaluate_names_a_damaged_checkpoint_before_the_model_loads(
    tiny_model, tmp_path, capsys, model_never_loads
):
    from hyperdas_tl.hyperdas.checkpoint import save_checkpoint
    from hyperdas_tl.hyperdas.config import HyperDASConfig
    from hyperdas_tl.hyperdas.model import HyperDAS

    checkpoint = tmp_path / "checkpoint"
    config = HyperDASConfig.build(target_model="tiny-llama", layer=2, k=4)
    save_checkpoint(checkpoint, HyperDAS(tiny_model, config))
    (checkpoint / "config.json").write_text('{"format": ')
    assert main(["evaluate", str(checkpoint), "--out", str(tmp_path / "again")]) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert line.startswith(f"error: {checkpoint / 'config.json'} is not valid JSON (")


def test_training_and_evaluation_run_with_finite_checks_on(tmp_path, monkeypatch, capsys):
    import hyperdas_tl.hyperdas.run as run_module
    from hyperdas_tl.hooks import finite_checks_enabled

    seen = []

    def record(*args, **kwargs):
        seen.append(finite_checks_enabled())
        raise ValueError("stop here")

    monkeypatch.setattr(run_module, "train_and_evaluate", record)
    monkeypatch.setattr(run_module, "evaluate_checkpoint", record)
    assert main(["train", "--model", "tiny-llama", "--out", str(tmp_path / "o")]) == 2
    assert main(["evaluate", str(tmp_path)]) == 2
    assert seen == [True, True] and not finite_checks_enabled()
    assert error_lines(capsys.readouterr().err) == ["error: stop here"] * 2

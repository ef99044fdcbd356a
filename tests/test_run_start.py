"""start_run: the one start of the train command, the demo and the benchmark script."""

import torch
from oracle_run import use_oracle_cache, write_ravel

from hyperdas_tl.experiment import DataConfig
from hyperdas_tl.run_start import start_run


def test_start_run_seeds_loads_builds_and_records(tiny_model, tmp_path, monkeypatch):
    import hyperdas_tl.run_start as run_start

    use_oracle_cache(tmp_path / "cache", monkeypatch)
    loaded = []

    def load(name, *, device, dtype):
        loaded.append((name, device, dtype))
        return tiny_model

    monkeypatch.setattr(run_start, "load_model", load)
    threads = torch.get_num_threads()
    config = DataConfig(source="ravel", ravel_path=str(write_ravel(tmp_path / "ravel")),
                        train_pairs=8, eval_pairs=4, batch_size=4)  # fmt: skip
    started = start_run("tiny-llama", config, seed=3, threads=1, device="cpu", precision="float32")
    try:
        assert loaded == [("tiny-llama", "cpu", torch.float32)]
        assert started.model is tiny_model and started.dtype == torch.float32
        assert started.data.batches["train"] and started.threads == 1
        assert started.provenance["seed"] == 3 and started.provenance["threads"] == 1
        assert started.provenance["dtype"] == "float32"
        assert started.provenance["deterministic"] and started.seconds >= 0
        again = start_run("tiny-llama", config, seed=3, target=tiny_model)
        assert len(loaded) == 1 and again.data.counts() == started.data.counts()
    finally:
        torch.set_num_threads(threads)

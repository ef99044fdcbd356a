import re

import torch

from hyperdas_tl.provenance import make_reproducible, package_versions, run_provenance


def test_provenance_records_versions_commit_command_seed_threads():
    record = run_provenance(seed=3, threads=1, argv=["prog", "--seed", "3"])
    assert record["command"] == ["prog", "--seed", "3"]
    assert record["seed"] == 3 and record["threads"] == 1
    assert record["packages"]["torch"] == torch.__version__
    assert record["packages"]["transformers"] is not None
    assert re.fullmatch(r"[0-9a-f]{40}", record["git"]["commit"])
    assert isinstance(record["git"]["dirty"], bool)


def test_make_reproducible_fixes_threads_and_determinism():
    before = torch.get_num_threads()
    try:
        assert make_reproducible(0, threads=1) == 1
        assert torch.get_num_threads() == 1
        assert torch.are_deterministic_algorithms_enabled()
        a = torch.rand(3)
        make_reproducible(0, threads=1)
        assert torch.equal(a, torch.rand(3))
    finally:
        torch.use_deterministic_algorithms(False)
        torch.set_num_threads(before)


def test_missing_packages_are_none():
    assert package_versions(("surely-not-installed-xyz",)) == {"surely-not-installed-xyz": None}

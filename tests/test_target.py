"""The target's structural type: what the library calls on the frozen model."""

import subprocess
import sys

import torch
from transformer_lens.hook_points import HookPoint

from hyperdas_tl.hooks import resid_pre_name
from hyperdas_tl.target import TargetConfig, TargetModel


def test_the_bridge_is_a_target_model(tiny_model):
    assert isinstance(tiny_model, TargetModel)
    assert isinstance(tiny_model.cfg, TargetConfig)
    assert not isinstance(3, TargetModel) and not isinstance(object(), TargetModel)


def test_hooks_receive_a_hook_point(tiny_model):
    seen = []

    def record(resid, *, hook):
        seen.append(hook)
        return resid

    ids = torch.tensor([[1, 2, 3]])
    tiny_model.run_with_hooks(ids, fwd_hooks=[(resid_pre_name(tiny_model, 1), record)])
    assert len(seen) == 1 and isinstance(seen[0], HookPoint)


def test_the_target_module_imports_nothing_heavy():
    code = (
        "import sys, hyperdas_tl.target; "
        "heavy = [m for m in ('torch', 'transformers', 'transformer_lens') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

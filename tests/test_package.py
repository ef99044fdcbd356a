import subprocess
import sys

import hyperdas_tl

HEAVY = ("torch", "transformers", "transformer_lens")


def test_every_export_resolves_to_the_object_its_module_defines():
    for name, module in hyperdas_tl._EXPORTS.items():
        value = getattr(hyperdas_tl, name)
        assert value is getattr(sys.modules[module], name), name
    assert {"HyperDAS", "compare_methods", "DataConfig", "evaluate"} <= set(hyperdas_tl.__all__)


def test_importing_the_package_imports_nothing_heavy():
    code = f"import sys, hyperdas_tl\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

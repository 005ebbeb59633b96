"""PyTorch is optional (`astra[torch]`): without it, `astra.ml.torch` says which extra to install,
the rest of `astra.ml` works, and tests/ml/test_torch.py skips cleanly instead of failing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# an import hook that finds no `torch`, as on a machine without it (a `None` in sys.modules would
# also stop the import, but libraries that look into sys.modules, as scipy does, trip over it)
NO_TORCH = """import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoTorch())
"""


def run(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NO_TORCH + code], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_without_torch_the_import_names_the_extra(tmp_path):
    done = run("import astra.ml\nprint(astra.ml.FeatureTransformer.__name__)\ntry:\n    import astra.ml.torch\n"
               "except ImportError as e:\n    print('refused:', e)\n", tmp_path)
    assert done.returncode == 0, done.stderr
    assert "FeatureTransformer" in done.stdout
    assert "refused: astra.ml.torch needs PyTorch; install the extra: pip install 'astra[torch]'" in done.stdout


def test_without_torch_its_tests_skip_cleanly(tmp_path):
    done = run("import pytest\nsys.exit(pytest.main(['-q', '-rs', '-p', 'no:cacheprovider', "
               f"'--basetemp={tmp_path / 'base'}', 'tests/ml/test_torch.py']))", tmp_path)
    # a module skipped as a whole leaves no test to run: pytest's exit status 5, "no tests ran"
    assert done.returncode in (0, 5), done.stdout + done.stderr
    assert "SKIPPED [1] tests/ml/test_torch.py" in done.stdout
    assert "PyTorch is the optional extra astra[torch]" in done.stdout
    assert "passed" not in done.stdout and "failed" not in done.stdout and "error" not in done.stdout.lower()

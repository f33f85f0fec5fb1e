"""The README's example of testing one's own MMD with implicitdiv.testing: it passes for the user's
correct function and fails for one with a planted bug."""
import importlib.util
import re
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def _example(tmp_path):
    """The README's example as a module (hypothesis reads its tests' source)."""
    text = README.read_text()
    section = text[text.index("## Testing your own kernels"):]
    path = tmp_path / "readme_example.py"
    path.write_text(re.search(r"```python\n(.*?)```", section, re.S).group(1))
    spec = importlib.util.spec_from_file_location("readme_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_example_passes(tmp_path):
    _example(tmp_path).test_my_mmd2_matches_implicitdiv()


def test_readme_example_catches_a_planted_bug(tmp_path):
    example = _example(tmp_path)
    correct = example.my_mmd2

    def off_by_one(x, y, bandwidth):
        """Leaves the last row of y out of the cross term, as an off-by-one loop would."""
        n, m = x.shape[0], y.shape[0]
        def k(a, b):
            diff = a.unsqueeze(1) - b.unsqueeze(0)
            return torch.exp(-(diff * diff).sum(-1) / (2 * bandwidth**2))
        return correct(x, y, bandwidth) + 2 * k(x, y[-1:]).sum() / (n * m)

    example.my_mmd2 = off_by_one
    with pytest.raises(AssertionError):
        example.test_my_mmd2_matches_implicitdiv()

"""faiss is optional (the `astra[vectors]` extra): without it the exact kind, persistence of an exact
index and every metric work, and asking for the hnsw kind says which extra to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_exact_kind_without_faiss(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        sys.modules["faiss"] = None  # any `import faiss` now fails, as in an environment without it
        import numpy as np
        from astra.vectors import VectorIndex, load, save
        index = VectorIndex(2, "cosine")
        index.insert([1, 2], np.array([[1, 0], [0, 1]], np.float32), [0, 0])
        assert index.search(np.array([1, 0.1], np.float32), k=1).keys == ((1,),)
        back = load(save(index, {str(tmp_path / "i.npz")!r}))
        assert back.search(np.array([0.1, 1], np.float32), k=1).keys == ((2,),)
        try:
            VectorIndex(2, kind="hnsw")
        except ImportError as exc:
            print(exc)
        else:
            raise SystemExit("hnsw without faiss should fail")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "the hnsw index kind needs faiss-cpu: install astra[vectors]"

import sys
from pathlib import Path

# the shared strategies and the offline helpers live in tests/ and tests/offline/
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "offline"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

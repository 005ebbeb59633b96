import sys
from pathlib import Path

# strategies_plan.py and oracle.py live in tests/, engines.py beside this file
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

"""Writes the demo's sample files: p1.npy and p2.npy drawn from one distribution, q.npy from another.

P = N(0, I_2); Q = N(0, I_2) with its second coordinate scaled by 1.5, 500 rows each, fixed seed."""
import sys
from pathlib import Path

import numpy as np


def main(out_dir: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2026)
    np.save(out / "p1.npy", rng.standard_normal((500, 2)))
    np.save(out / "p2.npy", rng.standard_normal((500, 2)))
    np.save(out / "q.npy", rng.standard_normal((500, 2)) * np.array([1.0, 1.5]))
    print(f"wrote {out}/p1.npy, p2.npy (same distribution) and q.npy (second coordinate scaled by 1.5)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "out/demo")

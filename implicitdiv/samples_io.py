"""Reading sample files (.npy, .npz, .csv) of rows for the command line, with one clear error each."""
from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import numpy as np


class SampleFileError(ValueError):
    """A sample file that is missing, unreadable or not a numeric table of rows."""


def _as_rows(arr: np.ndarray, path: Path) -> np.ndarray:
    if arr.dtype.kind not in "biuf":
        raise SampleFileError(f"{path}: expected numeric data, found dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise SampleFileError(f"{path}: expected a table of rows (N, d), found shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise SampleFileError(f"{path}: holds no samples (shape {arr.shape})")
    return arr.astype(np.float64)


def _read_csv(path: Path) -> np.ndarray:
    with path.open(newline="") as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    if not rows:
        raise SampleFileError(f"{path}: empty CSV")
    def numeric(row):
        try:
            [float(c) for c in row]
        except ValueError:
            return False
        return True
    start = 0 if numeric(rows[0]) else 1  # one header line is allowed
    width = len(rows[start]) if start < len(rows) else 0
    values = []
    for line, row in enumerate(rows[start:], start=start + 1):
        if len(row) != width:
            raise SampleFileError(f"{path}: ragged CSV, row {line} has {len(row)} fields, expected {width}")
        try:
            values.append([float(c) for c in row])
        except ValueError:
            raise SampleFileError(f"{path}: non-numeric value in row {line}: {row}") from None
    return np.asarray(values, dtype=np.float64).reshape(len(values), width)


def load_samples(path: str | Path) -> np.ndarray:
    """The rows of a .npy, .npz (its only array, or the one named "samples") or .csv file as (N, d) float64."""
    path = Path(path)
    if not path.is_file():
        raise SampleFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                names = list(z.keys())
                if "samples" in names:
                    arr = z["samples"]
                elif len(names) == 1:
                    arr = z[names[0]]
                else:
                    raise SampleFileError(f"{path}: holds {len(names)} arrays {names}; name one 'samples'")
        elif suffix == ".csv":
            arr = _read_csv(path)
        else:
            raise SampleFileError(f"{path}: unknown file type {suffix!r}; use .npy, .npz or .csv")
    except SampleFileError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, UnicodeDecodeError) as e:
        raise SampleFileError(f"{path}: cannot read samples ({e})") from None
    return _as_rows(np.asarray(arr), path)

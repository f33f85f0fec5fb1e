"""The command line: two-sample decisions on files, and one clear stderr line with exit code 2 for bad files."""
import subprocess
import sys

import numpy as np
import pytest

from implicitdiv.cli import main


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    p1, p2 = rng.standard_normal((200, 3)), rng.standard_normal((150, 3))
    q = rng.standard_normal((200, 3)) + np.array([1.0, 0.0, 0.0])
    np.save(tmp_path / "p1.npy", p1)
    np.savez(tmp_path / "p2.npz", samples=p2)
    np.savetxt(tmp_path / "q.csv", q, delimiter=",", header="a,b,c", comments="")
    (tmp_path / "ragged.csv").write_text("1,2,3\n4,5\n")
    (tmp_path / "words.csv").write_text("1,2,3\n4,five,6\n")
    np.save(tmp_path / "flat2.npy", rng.standard_normal((10, 2)))
    np.save(tmp_path / "strings.npy", np.array([["a", "b"], ["c", "d"]]))
    return tmp_path


def test_two_sample_keeps_h0_for_one_distribution(files, capsys):
    assert main(["two-sample", str(files / "p1.npy"), str(files / "p2.npz"), "--seed", "0", "--permutations", "200"]) == 0
    out = capsys.readouterr().out
    assert "keep H0" in out and "p-value" in out and "bandwidth" in out and "MMD^2" in out


def test_two_sample_rejects_h0_for_shifted_samples(files, capsys):
    code = main(["two-sample", str(files / "p1.npy"), str(files / "q.csv"), "--seed", "0", "--permutations", "200",
                 "--bandwidth", "1.5", "--kernel", "laplacian"])
    assert code == 0
    out = capsys.readouterr().out
    assert "reject H0" in out and "p-value: 0.004975" in out  # 1 / 201: the observed split counts


@pytest.mark.parametrize(
    "b,message",
    [
        ("missing.npy", "no such file"),
        ("ragged.csv", "ragged CSV"),
        ("words.csv", "non-numeric"),
        ("flat2.npy", "dimensions differ"),
        ("strings.npy", "numeric"),
    ],
)
def test_bad_files_give_one_clear_line_and_exit_code_2(files, capsys, b, message):
    assert main(["two-sample", str(files / "p1.npy"), str(files / b)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_module_entry_point_runs():
    done = subprocess.run([sys.executable, "-m", "implicitdiv", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "two-sample" in done.stdout

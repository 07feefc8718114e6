"""Training and `engine run` on the CPU: accuracy, determinism, stored rows, skips, errors, Ctrl-C."""
import json
import signal
import subprocess
import sys
import time

import pytest
import torch
from typer.testing import CliRunner

from engine.cli import app
from engine.data.loaders import load_digits_dataset
from engine.catalog.defaults import default_recipe
from engine.catalog.recipes import iterations_for
from engine.classifiers.train import train_classifier
from store import runs as store_runs
from tests.data.test_loaders import write_folder, write_medmnist

runner = CliRunner()
FAST = ["--recipe", "iterations=25"]


def tensors(ds):
    def nchw(x):
        return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    return nchw(ds.train_x), torch.from_numpy(ds.train_y), nchw(ds.test_x), torch.from_numpy(ds.test_y)


@pytest.mark.slow
def test_smallcnn_learns_digits_and_is_deterministic():
    ds = load_digits_dataset()
    tx, ty, ex, ey = tensors(ds)
    recipe = default_recipe("smallcnn", "digits", 800, 800, 800, traditional="crop")
    result = train_classifier("smallcnn", tx, ty, ex, ey, 10, recipe, seed=0, device=torch.device("cpu"))
    assert result.top1 > 90.0 and result.top5 > result.top1 - 1e-9
    short = recipe.with_overrides({"iterations": "15"})
    a = train_classifier("smallcnn", tx[:100], ty[:100], ex, ey, 10, short, 3, torch.device("cpu"))
    b = train_classifier("smallcnn", tx[:100], ty[:100], ex, ey, 10, short, 3, torch.device("cpu"))
    c = train_classifier("smallcnn", tx[:100], ty[:100], ex, ey, 10, short, 4, torch.device("cpu"))
    assert (a.top1, a.final_loss) == (b.top1, b.final_loss)
    assert a.final_loss != c.final_loss


def test_recipes_follow_the_paper():
    assert default_recipe("resnet110", "CIFAR-10", 1000, 500, 50_000).epochs == 480      # 1 % base
    assert default_recipe("resnet110", "CIFAR-10", 10_000, 5000, 50_000).epochs == 320   # 10 % base
    r = default_recipe("resnet110", "CIFAR-10", 50_000, 25_000, 50_000)
    assert (r.epochs, r.lr, r.batch_size, r.weight_decay, r.milestones) == (160, 0.1, 128, 1e-4, (0.5, 0.75))
    assert default_recipe("resnet110", "BloodMNIST", 2400, 1200, 12_000).lr == 0.01
    vit = default_recipe("vit-b32", "x", 7000, 6500, 130_000)
    assert (vit.weight_decay, vit.iterations, vit.schedule, vit.warmup, vit.batch_size) == (0.0, 60_000, "cosine", 0.1, 192)
    assert [iterations_for(n) for n in (650, 1300, 2600, 13_000, 260_000)] == [10_000, 30_000, 60_000, 120_000, 120_000]
    with pytest.raises(ValueError, match="unknown recipe option 'lrr'"):
        r.with_overrides({"lrr": "1"})


def run_cli(db, *args):
    return runner.invoke(app, ["run", "--db", str(db), *[str(a) for a in args]])


@pytest.mark.slow
def test_run_writes_rows_and_rerun_skips(tmp_path):
    db = tmp_path / "s.duckdb"
    res = run_cli(db, "--n-base", 20, "--added", "0,N", "--seeds", 2, *FAST)
    assert res.exit_code == 0, res.output
    rows = store_runs.query_runs(db, source="engine")
    assert len(rows) == 4 and set(rows.seed) == {0, 1} and set(rows.n_real_added) == {0, 20}
    assert set(rows.dataset) == {"digits"} and set(rows.classifier) == {"SmallCNN"} and set(rows.n_total) == {800}
    config = json.loads(rows.config.iloc[0])
    assert config["recipe"]["iterations"] == 25 and "torch" in config["versions"] and config["device"].startswith("cpu")
    import torch
    assert config["threads"] == {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()}
    assert rows.indices_hash.nunique() == 2 and rows.wall_time_s.gt(0).all()
    res = run_cli(db, "--n-base", 20, "--added", "0,N,2N", "--seeds", 2, *FAST)
    assert res.exit_code == 0 and "2 runs written, 4 already stored" in " ".join(res.output.split())
    assert len(store_runs.query_runs(db, source="engine")) == 6


@pytest.mark.parametrize("args, message", [
    (["--n-base", "900"], "n_base 900 is larger than digits's train split of 800"),
    (["--dataset", "mnist"], "unknown dataset 'mnist'"),
    (["--classifier", "resnet18"], "unknown classifier 'resnet18'"),
    (["--added", "0,ten"], "--added value 'ten' is not a whole number"),
    (["--n-base", "700", "--added", "0,200"], "only 100 lie outside"),
    (["--augmentation", "open"], "augmentation 'open'"),
    (["--recipe", "lr=fast"], "recipe option lr='fast' is not a valid float"),
    (["--device", "cuda:0"], "no CUDA GPU"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, message):
    db = tmp_path / "s.duckdb"
    res = run_cli(db, *args, *FAST)
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split()) and res.output.count("error:") == 1
    assert not db.exists()


def test_bad_files_are_reported(tmp_path):
    write_medmnist(tmp_path / "bloodmnist.npz", keys={"train_images", "train_labels"})
    res = run_cli(tmp_path / "s.duckdb", "--dataset", "medmnist:bloodmnist", "--data-root", tmp_path / "bloodmnist.npz")
    assert res.exit_code == 2 and "lacks key" in res.output
    write_folder(tmp_path / "one", classes=("only",))
    res = run_cli(tmp_path / "s.duckdb", "--dataset", f"folder:{tmp_path / 'one'}", "--n-base", 2, "--added", "0")
    assert res.exit_code == 2 and "needs at least 2" in " ".join(res.output.split())
    assert not (tmp_path / "s.duckdb").exists()


@pytest.mark.slow
def test_folder_dataset_runs_end_to_end(tmp_path):
    write_folder(tmp_path / "mine", per_class=(8, 4), size=8, mode="L")
    db = tmp_path / "s.duckdb"
    res = run_cli(db, "--dataset", f"folder:{tmp_path / 'mine'}", "--classifier", "smallcnn", "--n-base", 6,
                  "--added", "0,6", "--seeds", 1, *FAST)
    assert res.exit_code == 0, res.output
    assert set(store_runs.query_runs(db).dataset) == {"folder:mine"}


@pytest.mark.slow
def test_ctrl_c_leaves_only_complete_rows(tmp_path):
    db = tmp_path / "s.duckdb"
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "run", "--db", str(db), "--n-base", "30",
                             "--added", "0,N,2N,3N", "--seeds", "6", "--recipe", "iterations=60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    n = 0
    while time.monotonic() < deadline and n == 0:
        time.sleep(0.3)
        if db.exists():
            try:
                n = len(store_runs.query_runs(db))
            except Exception:
                n = 0  # the writer holds the file for a moment
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    rows = store_runs.query_runs(db)
    # 24 runs planned, so that a slow reader on a loaded machine still sees the first row long before
    # the last (with 12, a run under the full suite's load once finished before Ctrl-C came).
    assert 1 <= len(rows) < 24 and rows.top1.notna().all() and rows.config.notna().all()

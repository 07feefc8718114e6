"""`engine report [--html]` and `engine figures` at the command line: files whole or not at all, bad input
one line with exit 2."""
import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.report.export import browser_path
from tests.report.stores import toy_store

runner = CliRunner()


def written(folder) -> list[str]:
    """What a command left in the folder, besides the store and its lock file."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("store.duckdb"))


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_report_html_writes_one_file_and_says_so(paper_db, tmp_path):
    out = tmp_path / "r.html"
    res = invoke("report", "--html", out, "--dataset", "BloodMNIST", "--question", "6000:6000", "--n-boot", 0,
                 "--db", paper_db)
    assert res.exit_code == 0, res.output
    assert f"wrote {out} (1 settings" in res.output.replace("\n", "")
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "6,000 more real images at n_base 6,000" in text
    assert written(tmp_path) == ["r.html"]  # no temporary left behind


def test_plain_report_keeps_its_output_and_takes_the_filters(paper_db, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    res = invoke("report", "--n-boot", 0, "--dataset", "ImageNet-100", "--classifier", "ViT-B/32", "--db", paper_db)
    assert res.exit_code == 0, res.output
    summary = res.output[res.output.index("Eq. 1 for every setting"):]
    assert summary.count("ImageNet-100 · ViT-B/32") == 2 and "ResNet-50" not in summary and "CIFAR-10" not in summary


@pytest.mark.parametrize("args, says", [
    (["--question", "5000"], "--question '5000' is not n_base:N"),
    (["--question", "0:10"], "n_base must be positive"),
    (["--dataset", "CIFAR-100"], "unknown dataset 'CIFAR-100'; valid: BloodMNIST, CIFAR-10, ImageNet-100"),
    (["--classifier", "ResNet-18"], "unknown classifier 'ResNet-18'"),
    (["--n-boot", "-1"], "--n-boot -1 must be between"),
    (["--source", "mine"], "unknown source 'mine'"),
])
def test_bad_report_input_is_one_line_and_writes_nothing(paper_db, tmp_path, args, says):
    out = tmp_path / "r.html"
    res = invoke("report", "--html", out, *args, "--db", paper_db)
    assert res.exit_code == 2, res.output
    assert says in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert written(tmp_path) == []


def test_html_targets_that_cannot_be_written_are_refused_before_any_fit(paper_db, tmp_path):
    res = invoke("report", "--html", tmp_path / "missing" / "r.html", "--db", paper_db)
    assert res.exit_code == 2 and "does not exist" in res.output
    res = invoke("report", "--html", tmp_path, "--db", paper_db)
    assert res.exit_code == 2 and "is a folder" in res.output
    res = invoke("report", "--question", "5000:5000", "--db", paper_db)
    assert res.exit_code == 2 and "add --html OUT" in res.output


@pytest.mark.parametrize("args, says", [
    (["--format", "gif"], "--format 'gif': choose from png, svg, pdf"),
    (["--n-boot", "100000000"], "--n-boot 100000000 must be between"),
])
def test_bad_figures_input_is_one_line(paper_db, tmp_path, args, says):
    res = invoke("figures", "--out", tmp_path / "figs", *args, "--db", paper_db)
    assert res.exit_code == 2 and says in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert not (tmp_path / "figs").exists()


def test_figures_out_must_be_a_folder(paper_db, tmp_path):
    (tmp_path / "f").write_text("")
    res = invoke("figures", "--out", tmp_path / "f", "--db", paper_db)
    assert res.exit_code == 2 and "is a file, not a folder" in res.output


@pytest.mark.skipif(browser_path() is None, reason="static export needs Chromium (apt-get install chromium)")
def test_a_store_without_the_papers_settings_draws_no_figure(tmp_path):
    db = toy_store(tmp_path / "toy.duckdb")
    res = invoke("figures", "--out", tmp_path / "figs", "--n-boot", 0, "--db", db)
    assert res.exit_code == 2 and "no figure could be drawn" in res.output and "engine store init" in res.output
    assert not (tmp_path / "figs").exists()


def test_a_missing_browser_is_said_in_one_line_before_any_fit(paper_db, tmp_path, monkeypatch):
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-chrome"))
    res = invoke("figures", "--out", tmp_path / "figs", "--db", paper_db)
    assert res.exit_code == 2 and "static export needs" in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1 and not (tmp_path / "figs").exists()

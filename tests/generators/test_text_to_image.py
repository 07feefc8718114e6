"""`engine synthetic generate` end to end on the CPU with tiny random-weight models built from configs:
both prompt protocols, the CLIP filter's cut, provenance, a kill and a resume, `engine run` on the
generated set; bad or missing folders and options are one line, exit 2, and leave the store as it was."""
import hashlib
import json
import os
from pathlib import Path
import shutil

import duckdb
import numpy as np
import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.generators import generate_checks, text_to_image
from engine.generators.clip_filter import dropped_per_class, keep_mask
from engine.generators.prompts import FAMILIES, SIMPLE_TEMPLATE, mentions, plan_captions, plan_jobs
from store import synthetic as store_synthetic
from tests.processes import fresh_store
from tests.tiny_models import build_caption_model, build_clip, build_sd3_pipeline, build_sd_pipeline

runner = CliRunner()
# One torch thread: on a small shared machine two threads per process spin against each other.
FAST = ["--steps", "2", "--resolution", "32", "--batch-size", "8", "--threads", "1"]


def generate(db, name, *args):
    res = runner.invoke(app, ["synthetic", "generate", name, "--dataset", "digits", *map(str, args), "--db", str(db)])
    return res.exit_code, " ".join(res.output.split()), res


def snapshot(db):
    """The sets' rows, the runs and every file under the artifacts folder (work folders included)."""
    with duckdb.connect(str(db), read_only=True) as con:
        sets = con.execute("SELECT * FROM synthetic_sets ORDER BY synthetic_set_id").fetchall()
        runs = con.execute("SELECT count(*) FROM runs").fetchall()[0][0]
    art = db.parent / "artifacts"
    files = sorted((str(p.relative_to(art)), hashlib.sha256(p.read_bytes()).hexdigest())
                   for p in art.rglob("*") if p.is_file()) if art.exists() else []
    return sets, runs, files


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"sd": build_sd_pipeline(root / "sd"), "clip": build_clip(root / "clip"),
            "captions": build_caption_model(root / "captions")}


@pytest.fixture(scope="module")
def simple_set(models, tmp_path_factory):
    """digits, simple protocol, 5 per class, CLIP filter at the paper's 0.2: 50 made, 40 kept."""
    db = fresh_store(tmp_path_factory.mktemp("simple"))
    code, out, res = generate(db, "sd-simple", "--pipeline", models["sd"], "--protocol", "simple", "--per-class", 5,
                              "--clip", models["clip"], *FAST)
    assert code == 0, res.output
    assert "generated 50 images; the CLIP filter dropped 10 (1 per class); stored 40 as sd-simple" in out, out
    return db


def test_simple_protocol_filters_and_records_its_provenance(simple_set, models):
    db = simple_set
    row = store_synthetic.open_set("sd-simple", db)
    assert row["kind"] == "open" and row["n_images"] == 40 and row["class_counts"] == {str(c): 4 for c in range(10)}
    assert row["image_size"] == 8 and row["channels"] == 1 and row["source_path"] == str(models["sd"].resolve())
    made = row["provenance"]
    assert made["kind"] == "text-to-image" and made["protocol"] == "simple" and made["template"] == SIMPLE_TEMPLATE
    assert made["pipeline"]["class"] == "StableDiffusionPipeline" and len(made["pipeline"]["sha256"]) == 64
    assert made["clip"]["path"] == str(models["clip"].resolve()) and len(made["clip"]["sha256"]) == 64
    assert (made["steps"], made["guidance"], made["resolution"], made["seed"]) == (2, 7.5, 32, 0)  # 7.5: Tab. 7, SD2
    assert made["generated"] == 50 and made["kept"] == 40
    assert made["filter"]["fraction"] == 0.2 and made["filter"]["dropped"] == 10 and made["filter"]["dropped_per_class"] == 1
    records_path = made["records"]["path"]
    data = open(records_path, "rb").read()
    assert hashlib.sha256(data).hexdigest() == made["records"]["sha256"]
    records = json.loads(data)
    assert records["prompts"]["3"] == [{"text": "High-quality photo of a 3.", "family": None, "inputs": {},
                                        "writer": "simple"}]
    images = records["images"]
    assert len(images) == 50 and len({im["seed"] for im in images}) == 50
    with np.load(row["path"]) as npz:
        stored, labels = npz["images"], npz["labels"]
    assert stored.shape == (40, 8, 8, 1) and list(labels[:10]) == list(range(10))  # class-balanced stream
    for c in range(10):  # within each class the dropped image is the one CLIP scored lowest
        mine = [im for im in images if im["label"] == c]
        assert sum(not im["kept"] for im in mine) == 1
        lowest = min(mine, key=lambda im: im["score"])
        assert not lowest["kept"] and all(im["score"] >= lowest["score"] for im in mine)
        assert all(0 <= im["score"] <= 1 and im["clip_top"] in {str(k) for k in range(10)} for im in mine)
    kept = sorted(im["position"] for im in images if im["kept"])
    assert kept == list(range(40)) and all(labels[im["position"]] == im["label"] for im in images if im["kept"])
    # The work folder goes once the set is stored; running the same command again changes nothing.
    assert not any(text_to_image.work_root(db).iterdir())
    before = snapshot(db)
    code, out, _ = generate(db, "sd-simple", "--pipeline", models["sd"], "--protocol", "simple", "--per-class", 5,
                            "--clip", models["clip"], *FAST)
    assert code == 0 and "already generated" in out and snapshot(db) == before


@pytest.mark.slow
def test_engine_run_and_quality_take_the_generated_set(simple_set, tmp_path, monkeypatch):
    db = simple_set
    res = runner.invoke(app, ["run", "--db", str(db), "--dataset", "digits", "--n-base", "20", "--augmentation", "open",
                              "--generator", "sd-simple", "--added", "0,N", "--seeds", "1", "--recipe", "iterations=5", "--threads", "1",
                              "--quality", "off"])
    assert res.exit_code == 0, res.output
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT augmentation, generator, n_syn_added, synthetic_set_id FROM runs "
                           "WHERE source = 'engine' AND augmentation = 'open' AND n_syn_added > 0").fetchall()
    set_id = store_synthetic.open_set("sd-simple", db)["synthetic_set_id"]
    assert rows == [("open", "sd-simple", 20, set_id)]
    res = runner.invoke(app, ["quality", "sd-simple", "--metrics", "diversity", "--json", "--db", str(db)])
    assert res.exit_code == 0, res.output
    metrics = {r["metric"]: r for r in json.loads(res.stdout)}
    assert metrics["diversity"]["synthetic_set_id"] == set_id and metrics["diversity"]["n_syn"] == 40
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # FID/IS need the local Inception file, as for any set
    res = runner.invoke(app, ["quality", "sd-simple", "--metrics", "fid", "--db", str(db)])
    assert res.exit_code == 0 and "FID/IS skipped: no pt_inception" in " ".join(res.output.split()), res.output
    # The Generators page: the set, its samples, and its point on quality against gain.
    from pathlib import Path
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("EQUIV_DB", str(db))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "app" / "main.py"), default_timeout=60)
    at.switch_page("views/generators.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(set_id in option for option in at.selectbox(key="gen_set").options)
    assert len(at.get("image")) >= 10   # a row of samples per class
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert any(trace.get("text") == ["sd-simple (open set)"] for c in charts for trace in c["data"])


@pytest.mark.slow
def test_captions_protocol_with_a_caption_model(models, tmp_path, monkeypatch):
    monkeypatch.setattr(text_to_image.CaptionModel, "MAX_NEW_TOKENS", 8)  # 90 tries of a random model's noise
    db = fresh_store(tmp_path)
    args = ["--pipeline", models["sd"], "--per-class", 5, "--images-per-caption", 2, "--caption-model",
            models["captions"], *FAST]
    code, out, res = generate(db, "sd-captions", *args, "--keep-work")
    assert code == 0 and "generated 50 images; no CLIP filter" in out and "stored 50 as sd-captions" in out, res.output
    work = next(text_to_image.work_root(db).iterdir())
    assert (work / "manifest.json").exists() and len(list(work.glob("chunk-*.npz"))) == 7   # 50 in chunks of 8
    code, out, _ = generate(db, "sd-captions", *args)   # the same again: nothing made, the work folder goes
    assert code == 0 and "already generated" in out and not work.exists()
    code, out, _ = generate(db, "sd-captions", *args, "--clip", models["clip"])
    assert code == 2 and "already holds other images" in out   # another CLIP is another set
    made = store_synthetic.open_set("sd-captions", db)["provenance"]
    assert made["protocol"] == "captions" and made["images_per_caption"] == 2 and made["filter"]["dropped"] == 0
    assert made["template"] == ["c -> caption", "c, bg -> caption", "c, rel -> caption"]
    records = json.load(open(made["records"]["path"]))
    for c in range(10):
        captions = records["prompts"][str(c)]
        assert [cap["family"] for cap in captions] == ["c", "c,bg", "c,rel"]  # ceil(5 / 2) captions, one per family
        assert "bg" in captions[1]["inputs"] and {"rel", "object"} <= set(captions[2]["inputs"])
        for cap in captions:  # a random model's noise rarely names a class: then the template writes it
            assert cap["writer"] in ("model", "template (model fallback)") and mentions(cap["text"], str(c))
        per_caption = [sum(1 for im in records["images"] if im["label"] == c and im["caption"] == j) for j in range(3)]
        assert per_caption == [2, 2, 1]


@pytest.mark.slow
def test_a_killed_run_resumes_without_duplicates_and_makes_the_same_set(models, tmp_path, monkeypatch):
    args = ["--pipeline", models["sd"], "--protocol", "captions", "--per-class", 3, "--clip", models["clip"],
            "--filter-fraction", "0.34", *FAST]  # 30 images: chunks of 8, 8, 8, 6
    whole = fresh_store(tmp_path / "whole")
    assert generate(whole, "s", *args)[0] == 0
    expected = store_synthetic.open_set("s", whole)

    db = fresh_store(tmp_path / "killed")
    before = snapshot(db)

    def kill(chunks):
        if chunks == 2:
            raise KeyboardInterrupt
    monkeypatch.setattr(text_to_image, "AFTER_CHUNK", kill)
    with pytest.raises(KeyboardInterrupt):
        text_to_image.generate_set("s", "digits", models["sd"], db=db, log=lambda m: None, protocol="captions",
                                   per_class=3, clip=models["clip"], filter_fraction=0.34, steps=2, resolution=32,
                                   batch_size=8)
    assert store_synthetic.open_set("s", db) is None
    work = next(text_to_image.work_root(db).iterdir())
    assert len(list(work.glob("chunk-*.npz"))) == 2 and snapshot(db)[:2] == before[:2]
    monkeypatch.setattr(text_to_image, "AFTER_CHUNK", None)
    code, out, res = generate(db, "s", *args)
    assert code == 0 and "resuming: 16 of 30 images already made" in out, res.output
    row = store_synthetic.open_set("s", db)
    assert row["content_hash"] == expected["content_hash"] and row["n_images"] == 20   # 1 of 3 dropped per class
    records = json.load(open(row["provenance"]["records"]["path"]))
    keys = [(im["label"], im["caption"], im["image"]) for im in records["images"]]
    assert len(keys) == len(set(keys)) == 30
    assert not any(text_to_image.work_root(db).iterdir())


def test_an_sd3_pipeline_through_the_auto_pipeline_with_tab7s_guidance(tmp_path):
    sd3 = build_sd3_pipeline(tmp_path / "sd3")
    db = fresh_store(tmp_path)
    code, out, res = generate(db, "sd3", "--pipeline", sd3, "--per-class", 2, "--images-per-caption", 1, "--steps", 2,
                              "--threads", 1)
    assert code == 0 and "stored 20 as sd3" in out, res.output
    made = store_synthetic.open_set("sd3", db)["provenance"]
    assert made["pipeline"]["class"] == "StableDiffusion3Pipeline"
    assert (made["guidance"], made["resolution"]) == (2.0, 16)   # Tab. 7's SD3 CFG; the pipeline's own side


@pytest.mark.slow
def test_a_sigkilled_process_resumes(models, tmp_path):
    """A real kill -9 in the middle of a chunk: the half-written chunk is dropped, the rest reused."""
    import signal
    import subprocess
    import sys
    import time
    from tests.processes import Spawned
    db = fresh_store(tmp_path)
    args = ["synthetic", "generate", "s", "--dataset", "digits", "--pipeline", str(models["sd"]), "--per-class", "20",
            "--protocol", "simple", "--steps", "20", "--resolution", "32", "--batch-size", "4", "--threads", "1",
            "--db", str(db)]
    proc = Spawned([sys.executable, "-m", "engine.cli", *args], tmp_path / "log.txt",
                   cwd=str(Path(__file__).resolve().parents[2]))
    # Generous: on a loaded 2-core machine the child's imports alone can take a minute.
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(text_to_image.work_root(db).glob("*/chunk-*.npz")):
        time.sleep(0.05)
    assert proc.poll() is None, "the generation ended before it could be killed mid-way: make it longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    chunks = list(text_to_image.work_root(db).glob("*/chunk-*.npz"))
    assert chunks and store_synthetic.open_set("s", db) is None
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and "resuming" in res.output, res.output
    row = store_synthetic.open_set("s", db)
    assert row["n_images"] == 200
    assert len({(im["label"], im["image"]) for im in json.load(open(row["provenance"]["records"]["path"]))["images"]}) == 200


# ----------------------------------------------------------------------------- hostile input

def copy_pipeline(models, tmp, edit):
    dst = tmp / "sd-copy"
    shutil.copytree(models["sd"], dst)
    edit(dst)
    return dst


def corrupt(path):
    path.write_bytes(b"not a safetensors file")


BAD = [
    ("a pipeline folder that does not exist", lambda m, t: ["--pipeline", t / "nowhere"], "no such folder"),
    ("a pipeline that is a file", lambda m, t: ["--pipeline", m["sd"] / "model_index.json"], "is not a folder"),
    ("a folder without model_index.json", lambda m, t: ["--pipeline", m["clip"]], "holds no model_index.json"),
    ("model_index.json that is not JSON", lambda m, t: ["--pipeline", copy_pipeline(
        m, t, lambda d: (d / "model_index.json").write_text("{"))], "model_index.json is not readable JSON"),
    ("a component folder missing", lambda m, t: ["--pipeline", copy_pipeline(
        m, t, lambda d: shutil.rmtree(d / "unet"))], "lacks unet/, which its model_index.json names"),
    ("corrupt UNet weights", lambda m, t: ["--pipeline", copy_pipeline(
        m, t, lambda d: [corrupt(p) for p in (d / "unet").glob("*.safetensors")])],
     "cannot load the diffusers pipeline from"),
    ("a FIFO in the pipeline folder", lambda m, t: ["--pipeline", copy_pipeline(
        m, t, lambda d: os.mkfifo(d / "unet" / "waiting.bin"))], "is not a regular file"),
    ("a CLIP folder that does not exist", lambda m, t: ["--pipeline", m["sd"], "--clip", t / "noclip"],
     "--clip"),
    ("a CLIP folder without config.json", lambda m, t: ["--pipeline", m["sd"], "--clip", m["sd"]],
     "holds no config.json"),
    ("a CLIP folder holding another model", lambda m, t: ["--pipeline", m["sd"], "--clip", m["captions"]],
     "holds a 'gpt2' model, not 'clip'"),
    ("corrupt CLIP weights", lambda m, t: ["--pipeline", m["sd"], "--clip", (
        shutil.copytree(m["clip"], t / "clip"), corrupt(t / "clip" / "model.safetensors"), t / "clip")[2]],
     "cannot load the CLIP model from"),
    ("a caption model folder that does not exist", lambda m, t: ["--pipeline", m["sd"], "--caption-model", t / "x"],
     "--caption-model"),
    ("a caption model with the simple protocol", lambda m, t: ["--pipeline", m["sd"], "--protocol", "simple",
                                                               "--caption-model", m["captions"]],
     "--caption-model applies to --protocol captions only"),
    ("a filter fraction of 1", lambda m, t: ["--pipeline", m["sd"], "--clip", m["clip"], "--filter-fraction", "1"],
     "--filter-fraction 1.0 must be at least 0 and below 1"),
    ("a negative filter fraction", lambda m, t: ["--pipeline", m["sd"], "--clip", m["clip"], "--filter-fraction", "-0.1"],
     "must be at least 0 and below 1"),
    ("a filter without CLIP", lambda m, t: ["--pipeline", m["sd"], "--filter-fraction", "0.2"],
     "--filter-fraction needs --clip DIR"),
    ("no --per-class", lambda m, t: ["--pipeline", m["sd"], "--per-class", None], "--per-class K is needed"),
    ("zero per class", lambda m, t: ["--pipeline", m["sd"], "--per-class", "0"], "--per-class 0 must be between 1"),
    ("zero images per caption", lambda m, t: ["--pipeline", m["sd"], "--images-per-caption", "0"],
     "--images-per-caption 0 must be between 1"),
    ("zero steps", lambda m, t: ["--pipeline", m["sd"], "--steps", "0"], "--steps 0 must be between 1"),
    ("negative guidance", lambda m, t: ["--pipeline", m["sd"], "--guidance", "-1"], "--guidance -1.0 must be between 0"),
    ("NaN guidance", lambda m, t: ["--pipeline", m["sd"], "--guidance", "nan"], "--guidance nan must be a finite"),
    ("a resolution off the latent grid", lambda m, t: ["--pipeline", m["sd"], "--resolution", "30"],
     "--resolution 30 must be a multiple of 8"),
    ("zero batch size", lambda m, t: ["--pipeline", m["sd"], "--batch-size", "0"], "--batch-size 0 must be between 1"),
    ("an unknown protocol", lambda m, t: ["--pipeline", m["sd"], "--protocol", "fancy"], "--protocol 'fancy'"),
    ("an unknown dtype", lambda m, t: ["--pipeline", m["sd"], "--dtype", "float8"], "--dtype 'float8'"),
    ("an unknown device", lambda m, t: ["--pipeline", m["sd"], "--device", "tpu"], "unknown device 'tpu'"),
    ("a GPU this machine lacks", lambda m, t: ["--pipeline", m["sd"], "--device", "cuda:0"], "no CUDA GPU"),
]


@pytest.mark.parametrize("what, make, message", BAD, ids=[b[0] for b in BAD])
def test_bad_folders_and_options_are_one_line_and_store_nothing(simple_set, models, tmp_path, what, make, message):
    import torch
    if "cuda" in what and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    db = simple_set
    before = snapshot(db)
    args = make(models, tmp_path)
    given = dict(zip(args[::2], args[1::2]))
    # A quick valid default for what the case leaves out; None leaves an option out altogether.
    options = {"--per-class": "2", "--steps": "1", "--threads": "1", **given}
    code, out, res = generate(db, "other", *[a for kv in options.items() if kv[1] is not None for a in kv])
    assert code == 2 and message in out and res.output.count("error:") == 1, res.output
    assert "Traceback" not in res.output
    assert snapshot(db) == before


@pytest.mark.parametrize("name, dataset, message", [
    ("has space", "digits", "set name 'has space'"), ("edm", "digits", "set name 'edm'"),
    ("other", "mnist", "unknown dataset 'mnist'"),
    ("sd-simple-taken", "digits", "already holds other images"),
])
def test_bad_names_and_datasets_are_one_line(simple_set, models, name, dataset, message):
    db = simple_set
    if name == "sd-simple-taken":  # a name taken by another set is refused before anything is generated
        name = "sd-simple"
    before = snapshot(db)
    res = runner.invoke(app, ["synthetic", "generate", name, "--dataset", dataset, "--pipeline", str(models["sd"]),
                              "--per-class", "1", "--protocol", "simple", "--steps", "1", "--threads", "1", "--db", str(db)])
    assert res.exit_code == 2 and message in " ".join(res.output.split()), res.output
    assert snapshot(db) == before


# ----------------------------------------------------------------------------- pure parts

def test_tab7_defaults_follow_the_pipeline_and_the_resolution_its_configs(tmp_path):
    """SD3: CFG 2.0 (Tab. 7), 28 steps (ours); SD 1.x/2: 7.5 (Tab. 7), 50 (ours); the side is the
    denoiser's sample_size times the VAE's downsampling, read without loading a weight."""
    def folder(cls, denoiser, sample, blocks):
        root = tmp_path / cls
        for sub, config in ((denoiser, {"sample_size": sample}), ("vae", {"block_out_channels": [1] * blocks})):
            (root / sub).mkdir(parents=True)
            (root / sub / "config.json").write_text(json.dumps(config))
        (root / "model_index.json").write_text(json.dumps({"_class_name": cls, denoiser: ["diffusers", "X"],
                                                           "vae": ["diffusers", "AutoencoderKL"]}))
        return root
    sd3 = generate_checks.check_request("a", "digits", folder("StableDiffusion3Pipeline", "transformer", 128, 4),
                                      per_class=1)
    assert (sd3.guidance, sd3.steps, sd3.resolution, sd3.protocol, sd3.filter_fraction) == (2.0, 28, 1024, "captions", 0)
    sd2 = generate_checks.check_request("a", "digits", folder("StableDiffusionPipeline", "unet", 96, 4), per_class=1,
                                      clip=None, protocol="simple")
    assert (sd2.guidance, sd2.steps, sd2.resolution, sd2.images_per_caption) == (7.5, 50, 768, None)


def test_the_folder_hash_follows_links_and_sees_every_file(tmp_path):
    (tmp_path / "blobs").mkdir()
    (tmp_path / "blobs" / "w").write_bytes(b"weights")
    model = tmp_path / "model"
    model.mkdir()
    (model / "unet").symlink_to(tmp_path / "blobs")   # a linked folder, as caches and copies make
    (model / ".cache").mkdir()
    (model / ".cache" / "x").write_text("ignored")
    first = generate_checks.folder_sha256(model, "--pipeline")
    (model / ".cache" / "x").write_text("still ignored")
    assert generate_checks.folder_sha256(model, "--pipeline") == first
    (tmp_path / "blobs" / "w").write_bytes(b"other weights")
    assert generate_checks.folder_sha256(model, "--pipeline") != first


def test_caption_plan_cycles_the_three_families_and_is_deterministic():
    plan = plan_captions(["cat", "brown_bear"], "captions", 11, 5, seed=3)
    assert [[c.family for c in per] for per in plan] == [list(FAMILIES)] * 2      # ceil(11 / 5) = 3 captions
    assert plan == plan_captions(["cat", "brown_bear"], "captions", 11, 5, seed=3)
    assert plan != plan_captions(["cat", "brown_bear"], "captions", 11, 5, seed=4)
    assert all(mentions(c.text, "brown bear") for c in plan[1]) and plan[1][0].writer == "template"
    assert plan_captions(["cat"], "simple", 11, 5, 0)[0][0].text == "High-quality photo of a cat."
    said = []

    def writer(phrase, family, inputs, seed):
        said.append((phrase, family))
        return None if family == "c,rel" else f"a {phrase} somewhere"
    plan = plan_captions(["owl"], "captions", 3, 1, 0, writer)[0]
    assert [c.writer for c in plan] == ["model", "model", "template (model fallback)"]
    assert plan[0].text == "a owl somewhere" and said == [("owl", f) for f in FAMILIES]
    assert not mentions("c39o", "3") and mentions("a 3 on a table", "3") and mentions("A Brown-Bear", "brown bear")


def test_jobs_and_seeds_do_not_depend_on_the_amount():
    small, large = plan_jobs(2, "captions", 4, 3, 0), plan_jobs(2, "captions", 7, 3, 0)
    assert [(j.label, j.caption, j.image) for j in small[:4]] == [(0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 0)]
    assert {j.seed for j in small} <= {j.seed for j in large} and len({j.seed for j in large}) == 14


def test_the_filter_cuts_within_each_class():
    labels = np.array([0] * 5 + [1] * 5)
    scores = np.array([0.9, 0.1, 0.5, 0.1, 0.7, 0.2, 0.3, 0.4, 0.6, 0.8])
    keep = keep_mask(labels, scores, 0.4)
    assert keep.tolist() == [True, False, True, False, True, False, False, True, True, True]
    assert keep_mask(labels, scores, 0.0).all()
    assert [dropped_per_class(n, f) for n, f in [(5, 0.2), (4, 0.2), (100, 0.29), (1300, 0.2)]] == [1, 0, 29, 260]

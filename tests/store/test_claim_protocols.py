"""The Ray dispatcher leaves appendix G's jobs queued for a worker that runs them."""
from store import jobs
from store.db import connect, migrate


def test_the_cluster_claims_only_main_protocol_jobs_and_leaves_the_rest_queued(tmp_path):
    db = tmp_path / "s.duckdb"
    with connect(db) as con:
        migrate(con)
    zero_shot = jobs.submit({"dataset": "digits", "task": "zero-shot", "text_encoder": "/x"}, db, now=1.0)
    synthetic_base = jobs.submit({"dataset": "digits", "base": "synthetic", "generator": "g"}, db, now=2.0)
    main = jobs.submit({"dataset": "digits"}, db, now=3.0)
    taken = jobs.claim("ray", db, main_protocol_only=True)
    assert taken["job_id"] == main
    assert jobs.claim("ray", db, main_protocol_only=True) is None
    # A worker takes the others, oldest first.
    assert jobs.claim("worker", db)["job_id"] == zero_shot
    assert jobs.claim("worker", db)["job_id"] == synthetic_base

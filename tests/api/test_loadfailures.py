"""A version that fails to load is retried with a growing back-off, and at once when its
files change (a repair), so a corrupt million-user model is not re-hashed every few seconds."""

from __future__ import annotations

from pathlib import Path

from api.loadfailures import MAX_BACKOFF, LoadFailures, fingerprint


def test_failures_back_off_and_a_change_in_the_files_retries_at_once(tmp_path: Path) -> None:
    version = tmp_path / "v1"
    (version / "ranking").mkdir(parents=True)
    (version / "als.npz").write_bytes(b"corrupt")
    (version / "ranking" / "ranker.txt").write_text("tree")
    files = fingerprint(version)
    assert [name for name, _, _ in files] == ["als.npz", "ranking/ranker.txt"]
    failures = LoadFailures()
    assert failures.due("v1", files, now=0.0, retry_seconds=5)  # never tried
    failures.failed("v1", files, "CorruptArtifact: bad checksum", now=0.0)
    assert failures.error("v1") == "CorruptArtifact: bad checksum"
    # 1st failure: 5 s; each failure of the same files doubles the wait
    assert not failures.due("v1", files, now=4.9, retry_seconds=5)
    assert failures.due("v1", files, now=5.0, retry_seconds=5)
    failures.failed("v1", files, "again", now=5.0)
    assert not failures.due("v1", files, now=14.9, retry_seconds=5)
    assert failures.due("v1", files, now=15.0, retry_seconds=5)
    for k in range(20):  # the wait stops growing at MAX_BACKOFF periods
        failures.failed("v1", files, "again", now=100.0 * k)
    assert failures.due("v1", files, now=1900.0 + 5 * MAX_BACKOFF, retry_seconds=5)
    assert not failures.due("v1", files, now=1900.0 + 5 * MAX_BACKOFF - 1, retry_seconds=5)
    # an operator re-copies the file: tried at once, and its count starts again
    (version / "als.npz").write_bytes(b"repaired, and longer")
    repaired = fingerprint(version)
    assert repaired != files and failures.due("v1", repaired, now=1900.0, retry_seconds=5)
    failures.failed("v1", repaired, "still", now=1900.0)
    assert failures.due("v1", repaired, now=1905.0, retry_seconds=5)
    failures.loaded("v1")
    assert failures.error("v1") is None and failures.due("v1", repaired, 0.0, 5)
    assert fingerprint(tmp_path / "missing") == ()

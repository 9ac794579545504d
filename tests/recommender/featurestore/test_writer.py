"""The fast list writer produces Feast's bytes, and Feast reads what it wrote."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import psutil
import pytest
import redis
from feast.infra.online_stores.helpers import _redis_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import FloatList, StringList, Value

from recommender.config import Settings
from recommender.errors import FeatureStoreUnavailable
from recommender.featurestore.repo import open_store
from recommender.featurestore.resp import CommandBatch
from recommender.featurestore.writer import (
    ListEncoder,
    ListWriterPool,
    send_batches,
    send_pipelined,
    varint,
)
from tests.support.repo import ROOT
from tests.support.rowwise_lists import RowwiseListEncoder

ITEMS = np.array(["a0", "a1", "é-ü", "x" * 300, "b7"])


def test_varint_matches_protobuf() -> None:
    for n in (0, 1, 127, 128, 300, 16383, 16384, 1 << 21):
        raw = Value(string_val="x" * n).SerializeToString()
        assert raw[1 : 1 + len(varint(n))] == varint(n)


def test_keys_and_values_are_feasts_bytes() -> None:
    enc = ListEncoder("proj", "view_a", ITEMS, "v1", "r1", datetime.now(timezone.utc))
    for user in ("u1", "", "ü" * 40, "x" * 200):
        entity = EntityKey(join_keys=["user_id"], entity_values=[Value(string_val=user)])
        assert enc.key(user) == _redis_key("proj", entity, 3)
    rows = np.array([3, 0, 2, -1])
    expected = Value(string_list_val=StringList(val=ITEMS[[3, 0, 2]].tolist()))
    assert enc.item_list_value(rows[rows >= 0]) == expected.SerializeToString()
    scores = np.array([0.5, -1.25, 3.0], np.float32)
    assert enc.score_list_value(scores) == (
        Value(float_list_val=FloatList(val=scores.tolist())).SerializeToString()
    )
    empty = np.array([], np.float32)
    assert enc.score_list_value(empty) == Value(float_list_val=FloatList()).SerializeToString()
    assert enc.item_list_value(np.array([], int)) == (
        Value(string_list_val=StringList()).SerializeToString()
    )


def _ragged_lists(
    rng: np.random.Generator, n: int, k: int, n_items: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of up to ``k`` item indices padded with -1 (scores -inf), some of them empty."""
    rows = rng.integers(0, n_items, (n, k))
    scores = rng.standard_normal((n, k)).astype(np.float32)
    pad = np.arange(k)[None, :] >= rng.integers(0, k + 1, n)[:, None]
    pad[::97] = True  # empty lists
    rows[pad], scores[pad] = -1, -np.inf
    return rows, scores


def test_the_vectorised_encoder_writes_the_rowwise_encoders_bytes(
    rng: np.random.Generator,
) -> None:
    """Ragged and empty lists, non-ASCII and long ids (3-byte varints, 3-digit RESP lengths),
    across sub-batch boundaries: byte for byte what the per-row encoder wrote."""
    items = [*ITEMS, "", "ü" * 70, *(f"i{i}" for i in range(300))]
    users = [f"u{i}" if i % 5 else "ü" * (i % 211) + "x" * (i % 3) for i in range(1003)]
    rows, scores = _ragged_lists(rng, len(users), 70, len(items))
    rows[1, :] = 3  # 70 x 302 bytes: a value over 16 KiB
    now = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    new = ListEncoder("proj_é", "view_a", items, "v1", "r" * 200, now)
    old = RowwiseListEncoder("proj_é", "view_a", items, "v1", "r" * 200, now)
    expected = old.commands(users, rows, scores)
    assert new.commands(users, rows, scores) == expected
    batches = list(new.batches(np.array(users), rows, scores, 64))
    assert [b.count for b in batches] == [64] * 15 + [43]
    assert b"".join(b.data.to_pybytes() for b in batches) == b"".join(expected)
    ints = new.commands([7, 8], rows[:2], scores[:2].astype(np.float64))
    assert ints == old.commands([7, 8], rows[:2], scores[:2])  # str() of other ids
    assert new.commands([], rows[:0], scores[:0]) == []
    with pytest.raises(ValueError, match="differ"):
        new.encode(users[:2], rows[:3], scores[:3])

    # source masks (two-stage lists): per item, which of the named retrievers proposed it
    names = ("als", "ease", "recent", "trending", "popular")
    masks = rng.integers(1, 32, rows.shape).astype(np.uint8)
    new = ListEncoder("proj_é", "view_a", items, "v1", "r1", now, source_names=names)
    old = RowwiseListEncoder("proj_é", "view_a", items, "v1", "r1", now, source_names=names)
    expected = old.commands(users, rows, scores, masks)
    assert new.commands(users, rows, scores, masks) == expected
    batches = list(new.batches(np.array(users), rows, scores, 100, masks))
    assert b"".join(b.data.to_pybytes() for b in batches) == b"".join(expected)
    with pytest.raises(ValueError, match="source masks"):
        new.encode(users[:2], rows[:2], scores[:2], np.full(rows[:2].shape, 32))
    with pytest.raises(ValueError, match="list sources"):
        ListEncoder("p", "v", items, "v1", "r1", now, source_names=[f"r{i}" for i in range(8)])


@pytest.mark.integration
def test_feast_reads_back_ragged_rows_sent_in_batches(
    synthetic_repo: Settings, rng: np.random.Generator
) -> None:
    store = open_store(synthetic_repo)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    items = np.array(["a0", "a1", "b2", "b3", "é" * 40])
    names = ("als", "knn", "popular")
    enc = ListEncoder(
        store.project, "user_recommendations_b", items, "v7", "rb", now, source_names=names
    )
    users = np.array([f"lwb_{i}" for i in range(2500)])
    rows, scores = _ragged_lists(rng, len(users), 6, len(items))
    masks = rng.integers(1, 8, rows.shape)
    client = redis.Redis.from_url(synthetic_repo.redis.url)
    view = "user_recommendations_b"
    try:
        assert send_batches(client, enc.batches(users, rows, scores, 333, masks)) == 2500
        picked = [0, 1, 332, 333, 334, 970, 2499]
        got = store.get_online_features(
            features=[
                f"{view}:{name}"
                for name in ("rec_item_ids", "rec_scores", "rec_sources", "rec_source_names")
            ],
            entity_rows=[{"user_id": users[i]} for i in picked],
        ).to_dict()
        for n, i in enumerate(picked):
            keep = rows[i] >= 0
            assert (got["rec_item_ids"][n] or []) == items[rows[i][keep]].tolist()
            assert (got["rec_scores"][n] or []) == pytest.approx(scores[i][keep].tolist())
            assert (got["rec_sources"][n] or []) == masks[i][keep].tolist()
            assert got["rec_source_names"][n] == "als,knn,popular"
    finally:
        client.delete(*[enc.key(u) for u in users])


@pytest.mark.integration
def test_an_error_in_an_earlier_batch_or_in_encoding_drops_the_connection(
    redis_url: str,
) -> None:
    client = redis.Redis.from_url(redis_url)
    project = f"lwbatch_{uuid.uuid4().hex[:8]}"
    enc = ListEncoder(project, "v", ITEMS, "v1", "r1", datetime.now(timezone.utc))
    users = [f"b{i}" for i in range(30)]
    rows, scores = np.zeros((30, 2), int), np.ones((30, 2), np.float32)
    client.set(enc.key("b3"), "a string, not a hash")

    def failing() -> Iterator[CommandBatch]:
        yield enc.encode(users[:10], rows[:10], scores[:10])
        raise RuntimeError("scoring failed")

    try:
        with pytest.raises(FeatureStoreUnavailable, match="WRONGTYPE"):
            send_batches(client, enc.batches(users, rows, scores, 10))  # read after batch 2
        client.delete(enc.key("b3"))
        with pytest.raises(RuntimeError, match="scoring failed"):
            send_batches(client, failing())
        assert client.ping()
        assert send_batches(client, enc.batches(users, rows, scores, 7)) == 30
        assert client.hlen(enc.key("b29")) == 7  # the timestamp and the six list features
    finally:
        client.delete(*[enc.key(u) for u in users])


@pytest.mark.integration
def test_feast_reads_back_what_the_fast_writer_wrote(synthetic_repo: Settings) -> None:
    store = open_store(synthetic_repo)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    items = np.array(["a0", "a1", "b2", "b3"])
    enc = ListEncoder(store.project, "user_recommendations_b", items, "v9", "r9", now)
    rows = np.array([[2, 0, 1], [3, -1, -1]])
    scores = np.array([[0.9, 0.5, 0.25], [0.7, -np.inf, -np.inf]], np.float32)
    client = redis.Redis.from_url(synthetic_repo.redis.url)
    sent = send_pipelined(client, enc.commands(["lw_u1", "lw_u2"], rows, scores), batch=1)
    assert sent == 2
    got = store.get_online_features(
        features=[f"user_recommendations_b:{f}" for f in ("rec_item_ids", "rec_scores", "run_id")],
        entity_rows=[{"user_id": "lw_u1"}, {"user_id": "lw_u2"}],
    ).to_dict(include_event_timestamps=True)
    assert got["rec_item_ids"] == [["b2", "a0", "a1"], ["b3"]]
    assert got["rec_scores"][0] == pytest.approx([0.9, 0.5, 0.25])
    assert got["run_id"] == ["r9", "r9"]
    assert got["rec_item_ids__ts"][0] == int(now.timestamp())


@pytest.mark.integration
def test_an_error_reply_raises_and_the_connection_is_not_reused(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    enc = ListEncoder("lwtest", "v", ITEMS, "v1", "r1", datetime.now(timezone.utc))
    key = enc.key("wrongtype")
    client.set(key, "a string, not a hash")
    try:
        commands = enc.commands(["ok1", "wrongtype", "ok2"], np.zeros((3, 1), int), np.ones((3, 1)))
        with pytest.raises(FeatureStoreUnavailable, match="WRONGTYPE"):
            send_pipelined(client, commands, batch=10)
        assert client.ping()  # the pool hands out a clean connection afterwards
    finally:
        client.delete(key, enc.key("ok1"), enc.key("ok2"))


@pytest.mark.integration
def test_the_writer_pool_writes_every_row(synthetic_repo: Settings) -> None:
    store = open_store(synthetic_repo)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    items = ["a0", "a1", "b2", "b3"]
    pool = ListWriterPool(
        2,
        synthetic_repo.redis.url,
        None,
        3,
        project=store.project,
        view="user_recommendations_b",
        item_ids=items,
        model_version="v8",
        run_id="pool",
        timestamp=now,
    )
    users = np.array([f"pool_u{i}" for i in range(11)])
    rows = np.tile(np.array([[3, 1]]), (11, 1))
    try:
        assert pool.write(users, rows, np.ones((11, 2), np.float32)) == 11
    finally:
        pool.close()
    got = store.get_online_features(
        features=["user_recommendations_b:rec_item_ids", "user_recommendations_b:run_id"],
        entity_rows=[{"user_id": u} for u in users],
    ).to_dict()
    assert got["rec_item_ids"] == [["b3", "a1"]] * 11 and set(got["run_id"]) == {"pool"}


@pytest.mark.integration
def test_an_in_process_pool_writes_every_row_and_raises_error_replies(redis_url: str) -> None:
    project = f"lwlocal_{uuid.uuid4().hex[:8]}"
    now = datetime.now(timezone.utc)
    enc = ListEncoder(project, "v", ["a", "b"], "v1", "r1", now)
    users = np.array([f"l{i}" for i in range(9)])
    rows, scores = np.array([[1, -1]] * 9), np.ones((9, 2), np.float32)
    client = redis.Redis.from_url(redis_url)
    pool = ListWriterPool(
        0,
        redis_url,
        None,
        4,
        project=project,
        view="v",
        item_ids=["a", "b"],
        model_version="v1",
        run_id="r1",
        timestamp=now,
    )
    try:
        assert pool.pids == [] and pool.write(users, rows, scores) == 9
        assert client.hget(enc.key("l8"), enc.fields[0]) == enc.item_list_value(np.array([1]))
        client.set(enc.key("l5"), "a string, not a hash")
        with pytest.raises(FeatureStoreUnavailable, match="WRONGTYPE"):
            pool.write(users, rows, scores)
    finally:
        pool.close()
        client.delete(*[enc.key(u) for u in users])
    with pytest.raises(BrokenProcessPool, match="closed"):
        pool.write(users, rows, scores)
    with pytest.raises(ValueError, match="workers"):
        ListWriterPool(-1, redis_url, None, 4)


@pytest.mark.integration
def test_a_worker_error_reaches_the_caller_and_a_dead_worker_breaks_the_pool(
    redis_url: str,
) -> None:
    project = f"lwerr_{uuid.uuid4().hex[:8]}"
    now = datetime.now(timezone.utc)
    enc = ListEncoder(project, "v", ["a", "b"], "v1", "r1", now)
    users = np.array([f"e{i}" for i in range(4)])
    client = redis.Redis.from_url(redis_url)
    client.set(enc.key("e3"), "a string, not a hash")  # the second worker's share fails
    pool = ListWriterPool(
        2,
        redis_url,
        None,
        10,
        project=project,
        view="v",
        item_ids=["a", "b"],
        model_version="v1",
        run_id="r1",
        timestamp=now,
    )
    rows, scores = np.zeros((4, 1), int), np.ones((4, 1), np.float32)
    try:
        with pytest.raises(FeatureStoreUnavailable, match="WRONGTYPE") as info:
            pool.write(users, rows, scores)
        assert "send_batches" in str(info.value.__cause__)  # the worker's traceback
        client.delete(enc.key("e3"))
        assert pool.write(users, rows, scores) == 4  # both workers still in step
        os.kill(pool.pids[1], signal.SIGKILL)
        with pytest.raises(BrokenProcessPool):
            pool.write(users, rows, scores)
        with pytest.raises(BrokenProcessPool):
            pool.write(users, rows, scores)
    finally:
        pool.close()
        client.delete(*[enc.key(u) for u in users])


def _gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE  # dead, not yet reaped by init
    except psutil.NoSuchProcess:
        return True


@pytest.mark.integration
def test_the_writer_processes_die_with_a_killed_parent(redis_url: str, tmp_path: Path) -> None:
    """`kill -9` of the nightly job while it writes must not leave its writers (and helpers)
    running under init."""
    project = f"lwkill_{uuid.uuid4().hex[:8]}"
    code = (
        "import time\n"
        "from datetime import datetime, timezone\n"
        "import numpy as np\n"
        "from recommender.featurestore.writer import ListWriterPool\n"
        f"pool = ListWriterPool(2, {redis_url!r}, None, 10, project={project!r}, view='v',\n"
        "    item_ids=['a', 'b'], model_version='v1', run_id='r1',\n"
        "    timestamp=datetime.now(timezone.utc))\n"
        "rows, scores = np.zeros((2, 1), int), np.ones((2, 1), np.float32)\n"
        "print(pool.write(np.array(['u1', 'u2']), rows, scores), flush=True)\n"
        "time.sleep(600)\n"
    )
    errors = tmp_path / "stderr"
    with errors.open("w") as stderr:
        parent = subprocess.Popen(
            [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
    children: list[psutil.Process] = []
    enc = ListEncoder(project, "v", ["a", "b"], "v1", "r1", datetime.now(timezone.utc))
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "2", errors.read_text()
        children = psutil.Process(parent.pid).children(recursive=True)
        assert len(children) >= 2
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and not all(_gone(c) for c in children):
            time.sleep(0.1)
        survivors = [c.pid for c in children if not _gone(c)]
        assert survivors == []
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
        for child in children:
            if not _gone(child):
                child.kill()
        redis.Redis.from_url(redis_url).delete(enc.key("u1"), enc.key("u2"))

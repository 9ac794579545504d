"""The fast list writer produces Feast's bytes, and Feast reads what it wrote."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
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
from recommender.featurestore.writer import ListEncoder, ListWriterPool, send_pipelined, varint
from tests.support.repo import ROOT

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


@pytest.mark.integration
def test_feast_reads_back_what_the_fast_writer_wrote(synthetic_repo: Settings) -> None:
    store = open_store(synthetic_repo)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    items = np.array(["a0", "a1", "b2", "b3"])
    enc = ListEncoder(store.project, "user_recommendations_b", items, "v9", "r9", now)
    rows = np.array([[2, 0, 1], [3, -1, -1]])
    scores = np.array([[0.9, 0.5, 0.25], [0.7, -np.inf, -np.inf]], np.float32)
    client = redis.Redis.from_url(synthetic_repo.redis_url)
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
        synthetic_repo.redis_url,
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
        assert "send_pipelined" in str(info.value.__cause__)  # the worker's traceback
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

"""Signed snapshots, checkpoints and warm starts (no broker needed)."""

from __future__ import annotations

import json
import os
import pickle
import sys

import pytest
from kafka import TopicPartition

from consumers.checkpoint import Checkpoint, CheckpointStore, OffsetLedger
from consumers.cli import main
from consumers.partitions import PartitionModels
from stream import snapshot
from stream.datasets import load_dataset
from stream.errors import SnapshotError
from stream.events import Event
from stream.multitask import MultiTaskRecommender
from stream.registry import build_model
from stream.warm_start import FrozenRecommender, load_pretrained, pretrain, write_pretrained

KEY = b"k" * 32


def trained_model(n: int = 300):
    model = build_model("hybrid")
    for step in range(n):
        model.learn_one(Event(f"u{step % 7}", f"i{step % 11}", "click", float(step)))
    return model


def test_a_snapshot_round_trips_with_its_header(tmp_path):
    model = trained_model()
    path = snapshot.write(tmp_path / "m.snap", snapshot.Snapshot(model, {"note": "x"}), KEY)
    loaded = snapshot.read(path, KEY)
    assert loaded.header["note"] == "x" and loaded.header["format"] == snapshot.FORMAT_VERSION
    assert loaded.model.recommend(["u1"], 5) == model.recommend(["u1"], 5)


def test_a_file_of_another_format_is_refused_before_unpickling(monkeypatch):
    monkeypatch.setattr(snapshot, "FORMAT_VERSION", 1)
    old = snapshot.to_bytes(snapshot.Snapshot(trained_model()), KEY)
    monkeypatch.undo()
    monkeypatch.setattr(snapshot.pickle, "loads", lambda data: pytest.fail("unpickled"))
    with pytest.raises(
        SnapshotError, match="has format 1; this version of streamrec reads format 2"
    ):
        snapshot.from_bytes(old, KEY)


class _Gone:
    """Stands for a class an older release pickled and this one no longer has."""


def test_a_file_naming_classes_that_are_gone_gets_a_clear_error(monkeypatch):
    data = snapshot.to_bytes(snapshot.Snapshot(_Gone()), KEY)
    monkeypatch.delattr(sys.modules[__name__], "_Gone")
    with pytest.raises(SnapshotError, match="written by another version of streamrec"):
        snapshot.from_bytes(data, KEY)


@pytest.mark.parametrize("where", ["magic", "header", "payload", "tag"])
def test_any_changed_byte_is_refused_before_unpickling(tmp_path, where, monkeypatch):
    path = snapshot.write(tmp_path / "m.snap", snapshot.Snapshot(trained_model()), KEY)
    data = bytearray(path.read_bytes())
    header_end = len(snapshot.MAGIC) + 4 + int.from_bytes(data[len(snapshot.MAGIC) :][:4], "big")
    position = {"magic": 3, "header": header_end - 5, "payload": header_end + 50, "tag": -1}[where]
    data[position] ^= 0x01
    path.write_bytes(bytes(data))
    unpickled = []
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: unpickled.append(1))
    with pytest.raises(SnapshotError, match="authentication|not a streamrec snapshot"):
        snapshot.read(path, KEY)
    assert not unpickled  # refused before anything was deserialised


def test_wrong_key_truncation_and_missing_files_are_clear_errors(tmp_path):
    path = snapshot.write(tmp_path / "m.snap", snapshot.Snapshot(trained_model()), KEY)
    with pytest.raises(SnapshotError, match="failed authentication"):
        snapshot.read(path, b"x" * 32)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(SnapshotError, match="failed authentication|truncated"):
        snapshot.read(path, KEY)
    with pytest.raises(SnapshotError, match="no snapshot at"):
        snapshot.read(tmp_path / "absent.snap", KEY)


def test_a_tampered_payload_that_would_run_code_is_never_run(tmp_path):
    class Boom:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    forged = snapshot.to_bytes(snapshot.Snapshot(Boom()), b"attacker-key-attacker-key")
    (tmp_path / "forged.snap").write_bytes(forged)
    with pytest.raises(SnapshotError, match="failed authentication"):
        snapshot.read(tmp_path / "forged.snap", KEY)
    assert not (tmp_path / "pwned").exists()


def test_key_comes_from_env_or_file_and_must_be_long(tmp_path, monkeypatch):
    monkeypatch.delenv(snapshot.KEY_ENV, raising=False)
    with pytest.raises(SnapshotError, match="STREAMREC_SNAPSHOT_KEY"):
        snapshot.load_key()
    monkeypatch.setenv(snapshot.KEY_ENV, "short")
    with pytest.raises(SnapshotError, match="shorter than 16") as info:
        snapshot.load_key()
    assert "short" not in str(info.value).replace("shorter", "")  # the key is never echoed
    monkeypatch.setenv(snapshot.KEY_ENV, "e" * 40)
    assert snapshot.load_key() == b"e" * 40
    key_file = tmp_path / "key"
    key_file.write_text("f" * 20 + "\n")
    assert snapshot.load_key(key_file) == b"f" * 20


def test_a_failed_write_leaves_the_previous_snapshot_whole(tmp_path):
    path = snapshot.write(tmp_path / "m.snap", snapshot.Snapshot({"v": 1}), KEY)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        snapshot.write(path, snapshot.Snapshot(Unpicklable()), KEY)
    assert snapshot.read(path, KEY).model == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.snap"]  # no temporary left behind


def test_ledger_skips_redelivered_records_and_counts_gaps():
    ledger = OffsetLedger()
    assert ledger.admit(10) and ledger.admit(11)
    assert not ledger.admit(11) and not ledger.admit(5)  # already reflected
    assert ledger.admit(14)
    assert (ledger.first_offset, ledger.next_offset, ledger.redelivered, ledger.gaps) == (
        10,
        15,
        2,
        2,
    )
    assert OffsetLedger.from_dict(json.loads(json.dumps(ledger.to_dict()))) == ledger


def test_checkpoint_saves_partitions_with_their_offsets_and_restores_them(tmp_path):
    store = CheckpointStore(tmp_path, "group/1", KEY)
    tp = TopicPartition("events", 2)
    partitions = PartitionModels(lambda: (build_model("hybrid"), "v-fresh"), store)
    state = partitions.assign(tp, committed=None)
    for offset in range(40):
        assert state.ledger.admit(offset)
        state.model.learn_one(Event(f"u{offset % 3}", f"i{offset % 5}", "click", float(offset)))
        state.ledger.learned += 1
    state.dirty = True
    saved_at = []
    checkpoint = Checkpoint(store, interval=3600.0, on_saved=saved_at.append)
    assert checkpoint.save(partitions) == 1 and saved_at  # never saved: due at once
    state.dirty = True
    assert checkpoint.save(partitions) == 0  # saved a moment ago: not due
    assert checkpoint.save(partitions, force=True) == 1
    assert store.path(tp).parent.name == "group_1"  # a group id cannot escape the directory

    again = PartitionModels(lambda: (build_model("hybrid"), "v-fresh"), store)
    restored = again.assign(tp, committed=55)
    assert restored.ledger.next_offset == 40 and restored.ledger.learned == 40
    assert restored.replaying(54) and not restored.replaying(55)
    assert restored.model_version == "v-fresh"
    assert restored.model.recommend(["u1"], 3) == state.model.recommend(["u1"], 3)
    other = again.assign(TopicPartition("events", 0), committed=None)
    assert other.ledger.first_offset == -1 and other.model.n_users == 0


def test_pretrain_then_warm_start_carries_the_model_and_its_version(tmp_path):
    data = load_dataset("synthetic", seed=3)
    events = data.events[:2000]
    model = pretrain(build_model("hybrid"), events, catalog=data.items)
    path, version = write_pretrained(tmp_path / "w.snap", model, KEY, dataset="s", events=events)
    loaded, loaded_version = load_pretrained(path, KEY)
    assert loaded_version == version and version.startswith(model.version + "-pt")
    user = events[-1].user_id
    assert loaded.recommend([user], 5) == model.recommend([user], 5)
    frozen = FrozenRecommender(loaded)
    before = frozen.recommend([user], 5)
    frozen.learn_one(Event(user, before[0][0].item_id, "purchase", 1e12))
    assert frozen.recommend([user], 5) == before  # never learns


def test_pretrain_and_evaluate_warm_start_from_the_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(snapshot.KEY_ENV, "c" * 32)
    out = tmp_path / "pre.snap"
    args = ["--dataset", "synthetic", "--model", "hybrid", "--quiet"]
    assert main(["pretrain", *args, "--limit", "3000", "--out", str(out)]) == 0
    assert "pretrained hybrid-" in capsys.readouterr().out
    common = ["evaluate", *args, "--skip", "3000", "--limit", "1500"]
    assert main([*common, "--warm-start", str(out)]) == 0
    warm = json.loads(capsys.readouterr().out)
    assert main([*common, "--warm-start", str(out), "--frozen"]) == 0
    frozen = json.loads(capsys.readouterr().out)
    assert main(common) == 0
    cold = json.loads(capsys.readouterr().out)
    assert warm["events"] == frozen["events"] == cold["events"] == 1500
    assert "--warm-start" in warm["command"] and "--skip 3000" in warm["command"]
    assert warm["hr@10"] > cold["hr@10"]  # history helps the first events after it
    monkeypatch.setenv(snapshot.KEY_ENV, "d" * 32)  # another key: the snapshot is refused
    assert main([*common, "--warm-start", str(out)]) == 2
    assert "failed authentication" in capsys.readouterr().err


def test_state_size_is_recounted_only_when_the_last_count_is_old_enough():
    tp = TopicPartition("events", 0)
    partitions = PartitionModels(lambda: (build_model("hybrid"), "v"), None)
    state = partitions.assign(tp, committed=None)
    state.model.learn_one(Event("u1", "i1", "click", 1.0))
    first = partitions.state_size(max_age=3600.0)
    assert first["users"] == 1
    state.model.learn_one(Event("u2", "i2", "click", 2.0))
    assert partitions.state_size(max_age=3600.0) == first  # a recent count is reused
    assert partitions.state_size(max_age=0)["users"] == 2  # 0: count now


def test_a_multitask_model_is_pickled_without_its_scratch_and_refuses_other_formats():
    data = load_dataset("ml-100k")
    model = build_model("multitask")
    users = []
    for event in data.events[:3000]:
        model.recommend([event.user_id], 10)
        model.learn_one(event)
        users.append(event.user_id)
    assert model._retrieval.scratch.acc.size  # ranking's scratch over item rows
    state = pickle.dumps(model, protocol=5)
    loaded = pickle.loads(state)
    assert loaded._retrieval.scratch.acc.size == 0  # rebuilt on demand
    old = model.__getstate__()
    old["_format"] = 0
    stale = MultiTaskRecommender.__new__(MultiTaskRecommender)
    with pytest.raises(ValueError, match="format 0.*reads format"):
        stale.__setstate__(old)
    # The lists are the same.
    for user in dict.fromkeys(reversed(users[-200:])):
        assert loaded.recommend([user], 10) == model.recommend([user], 10), user

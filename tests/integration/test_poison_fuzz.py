"""Poison input, against a real broker: the real service meets every kind of bad record.

``streamrec run`` consumes 3,000 synthetic events and 80 records at the edges
of the contract, with ``N_PER_KIND`` fuzzed bad records of each kind of
:data:`~tests.integration.poison.FUZZ_KINDS` shuffled in (random bytes,
wrong types, NaN and infinities, huge strings, maps and arrays, deep
nesting, unknown event types, missing keys, a wrong key/user pairing, ...).
Then: the service never crashed and exits 0 on SIGTERM; every bad record is
in the dead-letter topic exactly once, key and value byte-identical, with
its expected reason and its original headers; no good record is; every good
record was learned (``streamrec_events_consumed_total`` per event type) and
every user has their list. The per-kind table is printed (``pytest -s``).

The checking itself (:func:`~tests.integration.poison.tally`) is tested
without a broker below, on dead letters that are missing, altered or wrong.
"""

from __future__ import annotations

import collections
from types import SimpleNamespace

import msgpack
import pytest

from stream.datasets.synthetic import generate_synthetic
from stream.errors import InvalidRecord
from stream.events import EVENT_TYPES, decode_event

from .poison import (
    BAD_ID_HEADER,
    FUZZ_KINDS,
    GOOD_ID_HEADER,
    edge_valid_records,
    format_table,
    fuzz_records,
    run_poison_fuzz,
    tally,
)

N_PER_KIND = 40
N_EDGE = 80
SEED = 5


@pytest.fixture(scope="module")
def fuzz_run(kafka_broker, tmp_path_factory):
    good = generate_synthetic(n_users=200, n_items=150, n_events=3000, seed=SEED).events
    return run_poison_fuzz(
        kafka_broker.bootstrap_servers,
        tmp_path_factory.mktemp("poison-fuzz"),
        n_per_kind=N_PER_KIND,
        good_events=good,
        n_edge=N_EDGE,
        seed=SEED,
        timeout=300,
    )


def metric(outcome, name: str, **labels: str) -> float:
    wanted = tuple(sorted(labels.items()))
    return sum(
        value
        for (sample, sample_labels), value in outcome.metrics.items()
        if sample == name and (not labels or sample_labels == wanted)
    )


def metric_by(outcome, name: str, label: str, values) -> dict[str, float]:
    """:func:`metric` for each of ``values`` of ``label``."""
    return {value: metric(outcome, name, **{label: value}) for value in values}


@pytest.mark.kafka
@pytest.mark.slow
def test_every_bad_record_is_dead_lettered_unchanged_with_its_reason(fuzz_run):
    rows, stray = tally(fuzz_run.bad, fuzz_run.dead_letters, fuzz_run.input_topic)
    consumed = metric(fuzz_run, "streamrec_events_consumed_total")
    print(f"\npoison fuzz: {N_PER_KIND} per kind, seed {SEED}, {fuzz_run.seconds:.1f}s")
    print(format_table(rows, len(fuzz_run.good_events), consumed))
    problems = [p for row in rows for p in row.problems] + stray
    assert not problems, "\n".join(problems[:30])
    assert {row.kind for row in rows} == set(FUZZ_KINDS)
    assert all(row.tried == row.dead_lettered == N_PER_KIND for row in rows)
    assert len(fuzz_run.dead_letters) == len(fuzz_run.bad)


@pytest.mark.kafka
@pytest.mark.slow
def test_rejections_are_counted_by_reason(fuzz_run):
    expected = collections.Counter(record.reason for record in fuzz_run.bad)
    counted = metric_by(fuzz_run, "streamrec_events_invalid_total", "reason", expected)
    assert counted == expected
    invalid = metric(fuzz_run, "streamrec_events_invalid_total")
    published = metric(fuzz_run, "streamrec_dlq_published_total")
    assert invalid == published == len(fuzz_run.bad)


@pytest.mark.kafka
@pytest.mark.slow
def test_every_good_record_is_learned_and_every_user_has_a_list(fuzz_run):
    by_type = collections.Counter(event.event_type for event in fuzz_run.good_events)
    consumed = metric_by(fuzz_run, "streamrec_events_consumed_total", "event_type", EVENT_TYPES)
    assert consumed == {event_type: by_type[event_type] for event_type in EVENT_TYPES}
    latest, last_event = {}, {}
    for record in fuzz_run.recommendations:
        latest[record.key] = record.value
    for event in fuzz_run.good_events:
        last_event[event.user_id.encode()] = event
    assert set(latest) == set(last_event)  # a list (or tombstone) for every good user, no other
    for user, event in last_event.items():
        if event.event_type == "forget_user":
            assert latest[user] is None, user
            continue
        message = msgpack.unpackb(latest[user])
        assert message["user_id"].encode() == user
        assert message["trigger_event_id"] == event.event_id
        assert message["items"], user


@pytest.mark.kafka
@pytest.mark.slow
def test_the_service_never_crashed(fuzz_run):
    exit_code, log = fuzz_run.exit_code, fuzz_run.log
    assert exit_code == 0
    assert "Traceback" not in log, log[-3000:]


# ----------------------------------------------------------------------------- the check can fail


def _letter(record, index: int, reason: str | None = None, **changes):
    """The dead letter the service should write for ``record`` (changes: what it got wrong)."""
    headers = [
        (BAD_ID_HEADER, str(index).encode()),
        ("fuzz.kind", record.kind.encode()),
        ("streamrec.error.reason", (reason or record.reason).encode()),
        ("streamrec.error.class", b"InvalidRecord"),
        ("streamrec.error.message", b"bad"),
        ("streamrec.source.topic", b"in"),
        ("streamrec.source.offset", str(index).encode()),
    ]
    fields = {"key": record.key, "value": record.value, "headers": headers, **changes}
    return SimpleNamespace(**fields)


def test_tally_passes_only_exact_dead_letters():
    bad = fuzz_records(2, seed=1)
    letters = [_letter(record, i) for i, record in enumerate(bad)]
    rows, stray = tally(bad, letters, "in")
    assert not stray and all(row.tried == row.dead_lettered == 2 for row in rows)

    wrong = list(letters)
    wrong[0] = _letter(bad[0], 0, reason="too_large")  # wrong reason
    wrong[2] = _letter(bad[2], 2, value=(bad[2].value or b"") + b"!")  # altered value
    wrong[4] = _letter(bad[4], 4, key=b"other")  # altered key
    kept = [h for h in _letter(bad[6], 6).headers if h[0] != "fuzz.kind"]
    wrong[6] = _letter(bad[6], 6, headers=kept)  # an original header lost
    del wrong[8]  # one missing
    wrong.append(_letter(bad[10], 10))  # one twice
    good = SimpleNamespace(key=b"u", value=b"v", headers=[(GOOD_ID_HEADER, b"3")])
    wrong.append(good)  # a good record dead-lettered
    rows, stray = tally(bad, wrong, "in")
    problems = [p for row in rows for p in row.problems]
    assert len(problems) == 6, problems
    assert sum(row.dead_lettered for row in rows) == len(bad) - 6
    assert stray == ["good record 3 dead-lettered: ?"]
    assert "MISSING OR WRONG" in format_table(rows, 1, 1)


def test_the_fuzz_corpus_holds_every_kind_and_good_edges_decode():
    bad = fuzz_records(10, seed=SEED)
    assert collections.Counter(r.kind for r in bad) == dict.fromkeys(FUZZ_KINDS, 10)
    for record in bad:
        with pytest.raises(InvalidRecord) as info:
            decode_event(record.value, record.key)
        assert info.value.reason == record.reason, (record.kind, record.note)
    for record in edge_valid_records(16, seed=SEED):
        assert decode_event(record.value, record.key) == record.event, record.kind

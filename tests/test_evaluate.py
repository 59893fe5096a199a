"""The offline evaluator: its measures, its order of steps, the CLI and the report."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
import pytest

from consumers.cli import main
from stream.evaluation import (
    TradeoffUnsupported,
    evaluate_tradeoff,
    prequential,
)
from stream.evaluation.metrics import ListQuality, intra_list_distance, log_loss, roc_auc
from stream.evaluation.run import evaluate_run
from stream.events import Event, Item
from stream.model import RecommendedItem, Recommender
from stream.tasks import task_labels

# ----------------------------------------------------------------------------- test models


class FixedList(Recommender):
    """The same list for everyone, learns nothing; predictions from a function of the event."""

    name = "fixed"

    def __init__(self, items: Sequence[str] = (), predict=None) -> None:
        self.items = list(items)
        self.predict = predict

    def learn_one(self, event: Event) -> None:
        pass

    def recommend(self, user_ids, k, *, with_reasons=True):
        return [[RecommendedItem(i, 1.0) for i in self.items[:k]] for _ in user_ids]

    def predict_tasks(self, event: Event) -> dict[str, float]:
        return {} if self.predict is None else self.predict(event)

    def forget_user(self, user_id: str) -> bool:
        return False

    @property
    def n_users(self) -> int:
        return 0

    @property
    def n_items(self) -> int:
        return 0


class Spy(FixedList):
    """Records every call, in order, with what it was shown."""

    def __init__(self) -> None:
        super().__init__(["x"])
        self.calls: list[tuple[str, object]] = []

    def recommend(self, user_ids, k, *, with_reasons=True):
        self.calls.append(("recommend", tuple(user_ids)))
        return super().recommend(user_ids, k, with_reasons=with_reasons)

    def predict_tasks(self, event):
        self.calls.append(("predict", (event.event_id, event.event_type, event.value)))
        return {}

    def learn_one(self, event):
        self.calls.append(("learn", event.event_id))

    def add_item(self, item):
        self.calls.append(("item", item.item_id))


class Echo(FixedList):
    """Recommends the last item it learned: a hit on every event if it learned first."""

    def __init__(self) -> None:
        super().__init__()
        self.last: str | None = None

    def learn_one(self, event):
        self.last = event.item_id

    def recommend(self, user_ids, k, *, with_reasons=True):
        return [[RecommendedItem(self.last, 1.0)] if self.last else [] for _ in user_ids]


def event(user, item, kind="click", t=0.0, value=None, n=0):
    return Event(user, item, kind, float(t), value, f"e{n}")


# ----------------------------------------------------------------------------- AUC, log-loss


def brute_force_auc(labels, scores):
    pos = [s for y, s in zip(labels, scores, strict=True) if y]
    neg = [s for y, s in zip(labels, scores, strict=True) if not y]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(8))
def test_auc_matches_pairwise_count_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 300))
    labels = rng.integers(0, 2, n)
    labels[0], labels[1] = 0, 1  # both classes
    # Few distinct values: many ties, which the rank formula must average.
    scores = rng.integers(0, int(rng.integers(1, 12)), n) / 10.0
    assert roc_auc(labels, scores) == pytest.approx(brute_force_auc(labels, scores), abs=1e-12)


def test_auc_needs_both_classes_and_rejects_nan():
    assert roc_auc([1, 1, 1], [0.1, 0.2, 0.3]) is None
    assert roc_auc([], []) is None
    with pytest.raises(ValueError):
        roc_auc([0, 1], [0.5, float("nan")])


def test_log_loss_is_mean_cross_entropy():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 50)
    p = rng.uniform(0.01, 0.99, 50)
    expected = -sum(math.log(q) if t else math.log(1 - q) for t, q in zip(y, p, strict=True)) / 50
    assert log_loss(y, p) == pytest.approx(expected)
    assert math.isfinite(log_loss([1, 0], [0.0, 1.0]))  # clipped, not infinite


# ----------------------------------------------------------------------------- ranking figures


def planted_stream(n_users=200, cycle=20):
    """User n meets item ``i{n % cycle}`` once: against list i0..i9, rank n % cycle + 1 or 0."""
    return [event(f"u{n}", f"i{n % cycle}", t=n, n=n) for n in range(n_users)]


def test_fixed_list_hit_rate_ndcg_mrr_are_exact():
    events = planted_stream()
    fixed = [f"i{r}" for r in range(10)]
    result = prequential(FixedList(fixed), events, k=10, rolling_every=50)
    ranks = [(n % 20) + 1 if n % 20 < 10 else 0 for n in range(200)]
    assert result.scored == 200
    assert result.hits == sum(r > 0 for r in ranks)
    assert result.hit_rate == pytest.approx(sum(r > 0 for r in ranks) / 200)
    assert result.ndcg == pytest.approx(sum(1 / math.log2(r + 1) for r in ranks if r) / 200)
    assert result.mrr == pytest.approx(sum(1 / r for r in ranks if r) / 200)
    rolling = result.rolling()
    assert rolling["events"] == [50, 100, 150, 200]
    assert rolling["hr@10"] == [
        pytest.approx(sum(r > 0 for r in ranks[w : w + 50]) / 50) for w in range(0, 200, 50)
    ]
    # k=3 cuts the list: only ranks 1..3 count.
    short = prequential(FixedList(fixed), events, k=3)
    assert short.hit_rate == pytest.approx(sum(0 < r <= 3 for r in ranks) / 200)


def test_repeats_are_not_ranked_and_forget_resets_seen():
    events = [
        event("u", "a", "view", 0, n=0),
        event("u", "a", "click", 1, n=1),  # same item again: a repeat
        event("u", "b", "dislike", 2, n=2),  # not a ranked type
        Event("u", None, "forget_user", 3.0, event_id="e3"),
        event("u", "a", "click", 4, n=4),  # after forgetting: new again
    ]
    result = prequential(FixedList(["a"]), events)
    assert (result.scored, result.repeats, result.hits) == (2, 1, 2)


# ----------------------------------------------------------------------------- honest order


def test_each_event_is_ranked_and_predicted_before_it_is_learned():
    events = [
        event("u1", "a", "view", 0, n=0),
        event("u1", "b", "purchase", 1, n=1),
        event("u2", "a", "rating", 2, value=5.0, n=2),
        event("u2", "c", "dislike", 3, n=3),
    ]
    spy = Spy()
    prequential(spy, events)
    for e in events:
        learned = spy.calls.index(("learn", e.event_id))
        predicted = [
            i for i, c in enumerate(spy.calls) if c[0] == "predict" and c[1][0] == e.event_id
        ]
        assert len(predicted) == 1 and predicted[0] < learned
        shown = spy.calls[predicted[0]][1]
        assert shown[2] is None  # the stars are hidden
        assert shown[1] in ("view", "rating")  # purchase / dislike are not given away
    ranked = [i for i, c in enumerate(spy.calls) if c[0] == "recommend"]
    learns = [i for i, c in enumerate(spy.calls) if c[0] == "learn"]
    dislike_learn = learns[3]
    # One ranking per ranked event, each before that event is learned.
    assert len(ranked) == 3
    assert all(r < n for r, n in zip(ranked, learns[:3], strict=True))
    assert all(r < dislike_learn for r in ranked)


def test_a_model_that_learns_first_cannot_score_hits():
    # Every event is a new item; Echo only ever recommends what it learned last.
    events = [event(f"u{n}", f"i{n}", t=n, n=n) for n in range(100)]
    assert prequential(Echo(), events).hits == 0


def test_predictions_cannot_read_the_label_off_the_event():
    rng = np.random.default_rng(0)
    kinds = ["view", "click", "add_to_cart", "purchase"]
    events = [event(f"u{n}", f"i{n}", kinds[int(rng.integers(4))], n, n=n) for n in range(400)] + [
        event(f"r{n}", "m", "rating", 400 + n, float(rng.integers(1, 6)), n=400 + n)
        for n in range(100)
    ]

    def cheat(e):
        labels = task_labels(Event(e.user_id, e.item_id, e.event_type, e.timestamp, e.value or 0.0))
        return {task: float(label) for task, label in labels.items()} | {
            "like": float((e.value or 0) >= 4)
        }

    auc = prequential(FixedList(["z"], predict=cheat), events).tasks.auc()
    assert set(auc) == {"click", "add_to_cart", "purchase", "like"}
    # Shown the real event, the cheat would score 1.0 everywhere.
    assert all(value == pytest.approx(0.5) for value in auc.values())


def test_task_scores_and_rmse_come_from_predict_tasks():
    rng = np.random.default_rng(1)
    stars = rng.integers(1, 6, 300).astype(float)
    guesses = {f"e{n}": float(rng.uniform(1, 5)) for n in range(300)}
    events = [event(f"u{n}", f"i{n}", "rating", n, stars[n], n=n) for n in range(300)]

    def predict(e):
        return {"like": guesses[e.event_id] / 5, "rating": guesses[e.event_id]}

    result = prequential(FixedList(["z"], predict=predict), events)
    preds = np.array([guesses[f"e{n}"] for n in range(300)])
    labels = (stars >= 4).astype(int)
    assert result.tasks.auc()["like"] == pytest.approx(brute_force_auc(labels, preds / 5))
    assert result.tasks.logloss()["like"] == pytest.approx(log_loss(labels, preds / 5))
    assert result.tasks.rmse() == pytest.approx(float(np.sqrt(np.mean((preds - stars) ** 2))))


def test_catalog_reaches_the_model_when_its_time_comes():
    spy = Spy()
    catalog = [Item("early", {}, 0.0), Item("late", {}, 5.0)]
    events = [event("u", f"i{t}", t=t, n=t) for t in range(10)]
    prequential(spy, events, catalog=catalog)
    order = [c for c in spy.calls if c[0] in ("item", "learn")]
    assert order.index(("item", "early")) < order.index(("learn", "e0"))
    assert (
        order.index(("learn", "e4")) < order.index(("item", "late")) < order.index(("learn", "e5"))
    )


# ----------------------------------------------------------------------------- list quality


def test_list_quality_coverage_diversity_novelty():
    catalog = [Item("a", {"genres": ["x", "y"]}), Item("b", {"genres": ["y"]}), Item("c", {})]
    quality = ListQuality(catalog)
    for item in ["a", "a", "a", "b"]:
        quality.interaction(item)
    quality.observe_sampled(["a", "b"], user_seen={"b"})
    quality.observe(["c"])
    assert quality.coverage() == pytest.approx(3 / 3)
    assert quality.diversity() == pytest.approx(1 - 1 / 2)  # Jaccard({x,y},{y}) = 1/2
    assert quality.novelty() == pytest.approx((-math.log2(3 / 4) - math.log2(1 / 4)) / 2)
    assert quality.seen_recommended == 1
    assert intra_list_distance(["a", "c"], {"a": 1}) is None


def test_trivial_model_runs_the_evaluator_above_ten_thousand_events_per_second():
    rng = np.random.default_rng(2)
    events = [
        event(f"u{rng.integers(500)}", f"i{rng.integers(300)}", "rating", n, 4.0, n=n)
        for n in range(20_000)
    ]
    model = FixedList([f"i{n}" for n in range(10)], predict=lambda e: {"like": 0.5, "rating": 3})
    catalog = [Item(f"i{n}", {"genres": [f"g{n % 7}", f"g{n % 3}"]}) for n in range(300)]
    result = prequential(model, events, catalog=catalog)
    assert result.events_per_second >= 10_000


# ----------------------------------------------------------------------------- trade-off


class Knob(FixedList):
    def __init__(self, diversity: float = 0.0) -> None:
        super().__init__(["a", "b"] if diversity < 0.5 else ["a", "c"])
        self.diversity = diversity


def test_tradeoff_runs_one_pass_per_weight():
    catalog = [
        Item("a", {"genres": ["x"]}),
        Item("b", {"genres": ["x"]}),
        Item("c", {"genres": ["z"]}),
    ]
    events = [event(f"u{n}", "ab"[n % 2], t=n, n=n) for n in range(20)]
    points = evaluate_tradeoff(Knob, events, [0.0, 1.0], catalog=catalog)
    assert [p["diversity_weight"] for p in points] == [0.0, 1.0]
    assert points[0]["hr@10"] == 1.0 and points[1]["hr@10"] == 0.5
    assert points[0]["diversity"] == 0.0 and points[1]["diversity"] == 1.0


def test_tradeoff_without_the_knob_is_skipped_with_a_reason():
    events = planted_stream(10)
    with pytest.raises(TradeoffUnsupported, match="diversity"):
        evaluate_tradeoff(FixedList, events, [0.0])

    def through_kwargs(**params):
        return FixedList(**params)

    with pytest.raises(TradeoffUnsupported, match="diversity"):
        evaluate_tradeoff(through_kwargs, events, [0.0])


# ----------------------------------------------------------------------------- CLI


def test_cli_prints_the_contract_json(capsys):
    code = main(["evaluate", "--dataset", "synthetic", "--limit", "3000"])
    out, err = capsys.readouterr()
    assert code == 0
    summary = json.loads(out)  # stdout holds the JSON and nothing else
    for key in ("events", "hr@10", "ndcg@10", "auc", "events_per_second"):
        assert key in summary
    for key in ("mrr@10", "logloss", "rmse", "coverage", "diversity", "novelty", "rolling"):
        assert key in summary
    assert summary["events"] == 3000
    assert 0.0 <= summary["hr@10"] <= 1.0
    assert isinstance(summary["auc"], dict)
    assert set(summary["auc"]) <= {"click", "add_to_cart", "purchase", "like"}
    assert summary["rolling"]["events"][-1] == 3000
    assert "events/s" in err  # the progress bar went to stderr


def test_cli_bad_dataset_exits_2_with_a_message(capsys):
    assert main(["evaluate", "--dataset", "no-such-thing", "--quiet"]) == 2
    assert "unknown dataset" in capsys.readouterr().err
    assert main(["evaluate", "--dataset", "missing.jsonl", "--quiet"]) == 2
    assert main(["evaluate", "--tradeoff", "--quiet"]) == 2
    assert "--report" in capsys.readouterr().err


# ----------------------------------------------------------------------------- report


def test_report_writes_summary_plots_and_markdown(tmp_path):
    from stream.datasets.synthetic import generate_synthetic
    from stream.evaluation.report import write_report
    from stream.registry import BASELINES

    dataset = generate_synthetic(n_users=100, n_items=60, n_events=2500, seed=3)
    rng = np.random.default_rng(0)

    def noisy(e):
        return {t: float(rng.uniform()) for t in ("click", "add_to_cart", "purchase", "like")}

    summary = evaluate_run(
        dataset,
        lambda: FixedList([f"i{n}" for n in range(10)], predict=noisy),
        baselines={"popularity": BASELINES["popularity"]},
    )
    summary["tradeoff"] = [
        {"diversity_weight": 0.0, "hr@10": 0.2, "diversity": 0.5},
        {"diversity_weight": 0.5, "hr@10": 0.18, "diversity": 0.7},
    ]
    written = write_report(summary, tmp_path / "report", command="streamrec evaluate --test")
    names = {p.name for p in written}
    assert names == {
        "summary.json",
        "hr_rolling.png",
        "auc_rolling.png",
        "tradeoff.png",
        "summary.md",
    }
    for path in written:
        assert path.stat().st_size > 0
    assert json.loads((tmp_path / "report" / "summary.json").read_text())["events"] == 2500
    md = (tmp_path / "report" / "summary.md").read_text()
    assert "streamrec evaluate --test" in md and "![hr_rolling](hr_rolling.png)" in md
    assert "| popularity |" in md

"""The checks every recommender passes, in the manner of River's ``river/checks/``.

:func:`yield_checks` yields the checks that apply to a model's kind: every
model gets the contract of :class:`~stream.model.Recommender`; a model whose
``recommend`` takes a ``domain`` also gets the domain check, and one that
overrides ``predict_tasks`` the check of its predictions.
:func:`check_recommender` runs them all and names every one that failed.
Each check is a function of one fresh, untrained model (:func:`fresh`)
that raises :class:`AssertionError` saying what went wrong.

Adding a check
    Write ``check_<name>(model)`` here, on the small data of this module
    (:func:`background`, :func:`clicks`), failing through :func:`_require`
    with a message that says what was expected and what came; then yield it
    from :func:`yield_checks` (under the kind it applies to). A check's name
    is its function's name without ``check_``: ``tests/test_model_contract.py``
    shows it as ``<model>-<name>``.

Tuning or skipping a check, in the model's class
    ``_unit_test_params``: a dict of constructor arguments the checks build
    the model with (:func:`instance_for_checks`), e.g. smaller settings.
    ``_unit_test_skips``: a set of check names the model does not run, each
    justified by a comment beside it (a popularity list cannot put a planted
    co-occurrence on top). A name that is not a check is an error.
"""

from __future__ import annotations

import inspect
import math
import pickle
import random
from collections.abc import Callable, Iterator
from typing import Any

from stream.events import Event, Item
from stream.heads import HEAD_ORDER
from stream.model import Recommender
from stream.tasks import TASKS

__all__ = [
    "Check",
    "background",
    "check_name",
    "check_recommender",
    "clicks",
    "fresh",
    "instance_for_checks",
    "skips",
    "yield_checks",
]

#: A check: takes a fresh, untrained model; raises AssertionError on failure.
Check = Callable[[Recommender], None]


# ----------------------------------------------------------------------------- data


def clicks(
    pairs: list[tuple[str, str]], start: float = 0.0, domain: str | None = None
) -> list[Event]:
    """Click events for ``(user, item)`` pairs, one second apart from ``start``."""
    if domain is None:
        return [Event(u, i, "click", start + n) for n, (u, i) in enumerate(pairs)]
    return [Event(u, i, "click", start + n, domain=domain) for n, (u, i) in enumerate(pairs)]


def background(
    n_users: int = 40, n_items: int = 60, n_events: int = 1500, seed: int = 0
) -> list[Event]:
    """Random clicks of ``bg0..`` on ``i0..``: noise a planted signal stands out from."""
    rng = random.Random(seed)
    return clicks(
        [(f"bg{rng.randrange(n_users)}", f"i{rng.randrange(n_items)}") for _ in range(n_events)]
    )


def _require(condition: object, message: str) -> None:
    """Raise AssertionError with ``message`` unless ``condition`` (kept under ``python -O``)."""
    if not condition:
        raise AssertionError(message)


def _ids(model: Recommender, user_id: str, k: int, **kwargs: Any) -> list[str]:
    return [entry.item_id for entry in model.recommend([user_id], k, **kwargs)[0]]


def _lists(model: Recommender, users: list[str], k: int = 10) -> dict[str, list[str]]:
    return {user: _ids(model, user, k) for user in users}


def _size(model: Recommender) -> dict[str, Any]:
    """What a model holds: ``n_users``, ``n_items`` and its own size tables where it has them."""
    size: dict[str, Any] = {"n_users": model.n_users, "n_items": model.n_items}
    for method in ("state_size", "river_state_size"):
        if hasattr(model, method):
            size[method] = getattr(model, method)()
    return size


# ----------------------------------------------------------------------------- the contract


def check_planted_preference(model: Recommender) -> None:
    """Everyone who clicks ``anchor`` then clicks ``planted``: a probe who clicked ``anchor``
    gets ``planted`` first."""
    events = background()
    t = float(len(events))
    for n in range(30):
        events += clicks([(f"fan{n}", "anchor"), (f"fan{n}", "planted")], start=t)
        t += 2
    events += clicks([("probe", "anchor")], start=t)
    model.learn_many(events)
    top = _ids(model, "probe", 5)
    _require(top and top[0] == "planted", f"the probe's top 5 is {top}, not led by 'planted'")


def check_unknown_users_create_no_state(model: Recommender) -> None:
    """Ranking unknown users gives them a fallback list and leaves the model as it was."""
    events = background(n_events=200)
    model.learn_many(events)
    _require(
        not {"stranger-1", "stranger-2"} & {e.user_id for e in events}, "strangers in the data"
    )
    before = _size(model)
    lists = model.recommend(["stranger-1", "stranger-2"], 10)
    _require(
        [len(entries) for entries in lists] == [10, 10],
        f"strangers got lists of {[len(e) for e in lists]} items, not a fallback list of 10",
    )
    _require(_size(model) == before, f"recommend grew the model: {before} -> {_size(model)}")
    model.recommend(["stranger-1"], 10)
    ids = model.recommend_ids("stranger-3", 10)
    _require(len(ids) == 10, f"recommend_ids gave a stranger {len(ids)} items, not 10")
    _require(_size(model) == before, f"scoring again grew the model: {before} -> {_size(model)}")


def check_learn_after_predict(model: Recommender) -> None:
    """A ranking taken before some events equals a twin's that never saw them; learning moves it."""
    events = background(n_events=400)
    twin = model.clone()
    model.learn_many(events[:300])
    twin.learn_many(events[:300])
    before = _ids(model, "bg1", 10)
    model.learn_many(events[300:])
    twin_before = _ids(twin, "bg1", 10)
    _require(
        before == twin_before,
        f"a ranking depends on later events: {before} vs a twin's {twin_before}",
    )
    after = _ids(model, "bg1", 10)
    _require(after != before, f"100 more events left the list as it was: {after}")


def check_lists_are_k_distinct_unseen_items(model: Recommender) -> None:
    """A known user's list: ``k`` distinct items, none seen, each with a reason, best first."""
    events = background()
    model.learn_many(events)
    seen = {e.item_id for e in events if e.user_id == "bg3"}
    top = model.recommend(["bg3"], 10)[0]
    ids = [entry.item_id for entry in top]
    _require(len(ids) == 10 == len(set(ids)), f"not 10 distinct items: {ids}")
    _require(not seen & set(ids), f"seen items recommended: {sorted(seen & set(ids))}")
    _require(all(entry.reason for entry in top), "an entry without a reason")
    scores = [entry.score for entry in top]
    _require(scores == sorted(scores, reverse=True), f"scores not best first: {scores}")


def check_withdrawn_items_never_recommended(model: Recommender) -> None:
    """A withdrawn item leaves every list (and recommend_ids); re-listing it brings it back."""
    model.learn_many(background())
    top = _ids(model, "newcomer", 5)
    _require(top, "a newcomer got an empty list")
    gone = top[0]
    model.withdraw_item(gone)
    for user in ("newcomer", "bg1", "bg2"):
        _require(gone not in _ids(model, user, 20), f"withdrawn {gone!r} listed for {user!r}")
        _require(
            gone not in model.recommend_ids(user, 20),
            f"withdrawn {gone!r} in recommend_ids for {user!r}",
        )
    model.add_item(Item(gone, {"title": "back"}))  # re-listing brings it back
    _require(gone in _ids(model, "newcomer", 20), f"re-listed {gone!r} did not come back")


def check_forget_user_erases(model: Recommender) -> None:
    """A forgotten user gets a stranger's list; forgetting twice (or a stranger) returns False."""
    model.learn_many(background())
    _require(model.forget_user("bg1") is True, "forget_user of a known user did not return True")
    _require(model.forget_user("bg1") is False, "forgetting twice did not return False")
    size = _size(model)
    _require(model.forget_user("never-seen") is False, "forgetting a stranger did not give False")
    _require(_size(model) == size, "forgetting a stranger changed the model")
    stranger = _ids(model, "stranger", 10)
    as_forgotten = _ids(model, "bg1", 10)
    _require(
        as_forgotten == stranger,
        f"a forgotten user's list {as_forgotten} is not a stranger's {stranger}",
    )
    _require(
        model.recommend_ids("bg1", 10) == model.recommend_ids("stranger", 10),
        "a forgotten user's recommend_ids are not a stranger's",
    )
    users = model.n_users
    model.learn_one(Event("bg1", "i1", "click", 1e6))
    _require(model.n_users == users + 1, "a forgotten user who comes back is not a new user")


def check_recommend_ids_match_recommend(model: Recommender) -> None:
    """``recommend_ids`` lists what ``recommend`` lists, for known users and strangers."""
    model.learn_many(background())
    for user in ["bg1", "bg7", "stranger"]:
        expected = [entry.item_id for entry in model.recommend([user], 10, with_reasons=False)[0]]
        got = model.recommend_ids(user, 10)
        _require(got == expected, f"recommend_ids({user!r}) is {got}, recommend gives {expected}")
        _require(len(expected) == 10, f"{user!r} got {len(expected)} items, not 10")
        with_reasons = _ids(model, user, 10)
        _require(with_reasons == expected, f"with_reasons changes {user!r}'s list")


def check_version_names_configuration(model: Recommender) -> None:
    """``params`` holds every constructor argument, ``clone`` keeps them and learns nothing,
    and ``version`` names the class and settings, not the learned state."""
    settings = set(inspect.signature(type(model).__init__).parameters) - {"self"}
    settings -= {
        name
        for name, p in inspect.signature(type(model).__init__).parameters.items()
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    params = model.params()
    _require(
        set(params) == settings,
        f"constructor arguments not stored under their names: {sorted(settings - set(params))}",
    )
    version = model.version
    _require(version.startswith(model.name), f"version {version!r} does not start with the name")
    _require(model.clone().version == version, "a clone has another version")
    _require(model.clone().params() == params, "a clone has other params")
    model.learn_many(background(n_events=100))
    _require(model.version == version, "learning changed the version")
    clone = model.clone()
    _require(
        (clone.n_users, clone.n_items) == (0, 0), "a clone of a trained model is not untrained"
    )
    changed = _changed_setting(model)
    if changed is not None:
        name, other = changed
        _require(other.version != version, f"changing {name!r} leaves the version as it was")


def _changed_setting(model: Recommender) -> tuple[str, Recommender] | None:
    """The first numeric setting the model can be built with another value of, and that model."""
    params = model.params()
    for name, value in params.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        try:
            return name, type(model)(**{**params, name: value + 1})
        except ValueError:
            continue
    return None


def check_k_beyond_catalog(model: Recommender) -> None:
    """``k`` above the catalog lists distinct unseen items, no more than there are."""
    events = background(n_events=300, n_items=20)
    model.learn_many(events)
    seen = {e.item_id for e in events if e.user_id == "bg1"}
    for user, hidden in (("bg1", seen), ("stranger", set())):
        ids = _ids(model, user, 1000)
        _require(len(ids) == len(set(ids)), f"duplicates for k=1000: {ids}")
        _require(not hidden & set(ids), f"seen items for k=1000: {sorted(hidden & set(ids))}")
        _require(
            0 < len(ids) <= 20 - len(hidden),
            f"{len(ids)} items for {user!r} from a catalog of 20 ({len(hidden)} seen)",
        )
        _require(model.recommend_ids(user, 1000) == ids, "recommend_ids differs for k=1000")


def check_k_zero(model: Recommender) -> None:
    """``k=0`` gives one empty list per user."""
    model.learn_many(background(n_events=200))
    lists = model.recommend(["bg1", "stranger"], 0)
    _require(lists == [[], []], f"k=0 gave {lists}")
    _require(model.recommend_ids("bg1", 0) == [], "recommend_ids with k=0 is not empty")


def check_empty_model(model: Recommender) -> None:
    """An untrained model: empty lists, no state, nothing to forget, no state from predicting."""
    _require((model.n_users, model.n_items) == (0, 0), "a fresh model holds users or items")
    lists = model.recommend(["a", "b"], 10)
    _require(lists == [[], []], f"an empty model listed {lists}")
    _require(model.recommend_ids("a", 10) == [], "an empty model's recommend_ids is not empty")
    _require(model.forget_user("a") is False, "an empty model forgot a user")
    predictions = model.predict_tasks(Event("a", "x", "click", 0.0))
    _require(isinstance(predictions, dict), f"predict_tasks gave {type(predictions).__name__}")
    _require((model.n_users, model.n_items) == (0, 0), "an empty model grew while scoring")


def check_predict_tasks_creates_no_state(model: Recommender) -> None:
    """``predict_tasks`` on known and unknown ids grows nothing and changes no list."""
    events = background(n_events=300)
    twin = model.clone()
    model.learn_many(events)
    twin.learn_many(events)
    before = _size(model)
    for user, item in [("stranger", "i1"), ("bg1", "no-such-item"), ("stranger", "nope"),
                       ("bg1", "i2")]:  # fmt: skip
        for event_type in ("click", "rating"):
            value = 4.0 if event_type == "rating" else None
            model.predict_tasks(Event(user, item, event_type, 1e5, value))
    _require(_size(model) == before, f"predict_tasks grew the model: {before} -> {_size(model)}")
    lists, twins = _lists(model, ["bg1", "stranger"]), _lists(twin, ["bg1", "stranger"])
    _require(lists == twins, f"predict_tasks changed the lists: {lists} vs a twin's {twins}")


def check_pickle_round_trip(model: Recommender) -> None:
    """A pickled and restored model lists the same items, and goes on learning the same."""
    events = background(n_events=600)
    model.learn_many(events[:400])
    copy = pickle.loads(pickle.dumps(model))  # noqa: S301 - our own bytes
    users = ["bg1", "bg5", "stranger"]
    _require(copy.version == model.version, "a restored model has another version")
    _require(_size(copy) == _size(model), f"sizes differ: {_size(model)} vs {_size(copy)}")
    original, restored = _lists(model, users), _lists(copy, users)
    _require(original == restored, f"restored lists {restored} differ from {original}")
    model.learn_many(events[400:])
    copy.learn_many(events[400:])
    original, restored = _lists(model, users), _lists(copy, users)
    _require(original == restored, f"after more events: {restored} differ from {original}")


# ----------------------------------------------------------------------------- model kinds


def check_domain_lists(model: Recommender) -> None:
    """With ``domain``, only that domain's items, and ``recommend_ids`` agrees."""
    rng = random.Random(1)
    pairs = [(f"bg{rng.randrange(30)}", f"b{rng.randrange(20)}") for _ in range(300)]
    model.learn_many(clicks(pairs, domain="books"))
    pairs = [(f"bg{rng.randrange(30)}", f"f{rng.randrange(20)}") for _ in range(300)]
    model.learn_many(clicks(pairs, start=1000.0, domain="films"))
    for user in ("bg1", "stranger"):
        for domain, prefix in (("books", "b"), ("films", "f")):
            ids = _ids(model, user, 10, domain=domain)
            _require(ids, f"{user!r} got no {domain}")
            _require(all(i.startswith(prefix) for i in ids), f"{user!r}'s {domain} list has {ids}")
            got = model.recommend_ids(user, 10, domain=domain)
            _require(got == ids, f"recommend_ids(domain={domain!r}) is {got}, recommend {ids}")


def check_task_predictions(model: Recommender) -> None:
    """Predictions are named by tasks or heads; each is a probability in [0, 1]
    (``rating``: finite stars), for known and unknown ids."""
    model.learn_many(background(n_events=300))
    model.learn_many([Event(f"bg{n}", f"i{n}", "rating", 2e3 + n, 4.0) for n in range(20)])
    for user, item in [("bg1", "i2"), ("stranger", "i2"), ("bg1", "nope")]:
        predictions = model.predict_tasks(Event(user, item, "click", 1e5))
        unknown = set(predictions) - set(TASKS) - set(HEAD_ORDER)
        _require(not unknown, f"predict_tasks keys neither tasks nor heads: {sorted(unknown)}")
        for task, value in predictions.items():
            _require(isinstance(value, float) and math.isfinite(value), f"{task}: {value!r}")
            if task != "rating":
                _require(0.0 <= value <= 1.0, f"{task} for ({user}, {item}) is {value}")


_CONTRACT: tuple[Check, ...] = (
    check_planted_preference,
    check_unknown_users_create_no_state,
    check_learn_after_predict,
    check_lists_are_k_distinct_unseen_items,
    check_withdrawn_items_never_recommended,
    check_forget_user_erases,
    check_recommend_ids_match_recommend,
    check_version_names_configuration,
    check_k_beyond_catalog,
    check_k_zero,
    check_empty_model,
    check_predict_tasks_creates_no_state,
    check_pickle_round_trip,
)

_ALL: tuple[Check, ...] = (*_CONTRACT, check_domain_lists, check_task_predictions)


# ----------------------------------------------------------------------------- running


def check_name(check: Check) -> str:
    """The check's name: its function's name without ``check_``."""
    return check.__name__.removeprefix("check_")


def yield_checks(model: Recommender) -> Iterator[Check]:
    """The checks for the model's kind, skipped ones included (see :func:`skips`).

    Parameters
    ----------
    model
        Any recommender; only its class is read.

    Yields
    ------
    Check
        Functions of a fresh model (:func:`fresh`).
    """
    yield from _CONTRACT
    if "domain" in inspect.signature(model.recommend).parameters:
        yield check_domain_lists
    if type(model).predict_tasks is not Recommender.predict_tasks:
        yield check_task_predictions


def skips(model: Recommender | type[Recommender]) -> set[str]:
    """The check names the model's class skips (``_unit_test_skips``); unknown names raise."""
    skipped = set(getattr(model, "_unit_test_skips", set()))
    unknown = skipped - {check_name(check) for check in _ALL}
    if unknown:
        owner = model if isinstance(model, type) else type(model)
        raise ValueError(f"{owner.__name__}._unit_test_skips names no check: {sorted(unknown)}")
    return skipped


def instance_for_checks(cls: type[Recommender], **params: Any) -> Recommender:
    """A model of ``cls`` built with its ``_unit_test_params`` (updated by ``params``)."""
    return cls(**{**getattr(cls, "_unit_test_params", {}), **params})


def fresh(model: Recommender) -> Recommender:
    """An untrained model with ``model``'s settings, for one check."""
    return model.clone()


def check_recommender(model: Recommender) -> None:
    """Run every check of :func:`yield_checks` not skipped, each on a fresh model.

    Parameters
    ----------
    model
        The model whose settings the checks use (it is not trained).

    Raises
    ------
    AssertionError
        Naming every failed check and why (an error other than AssertionError
        counts as a failure too).
    """
    skipped = skips(model)
    failures = []
    for check in yield_checks(model):
        name = check_name(check)
        if name in skipped:
            continue
        try:
            check(fresh(model))
        except Exception as exc:  # every check runs; all failures are reported
            kind = "" if isinstance(exc, AssertionError) else f"{type(exc).__name__}: "
            failures.append(f"{name}: {kind}{exc}")
    if failures:
        raise AssertionError(
            f"{type(model).__name__} failed {len(failures)} check(s):\n  " + "\n  ".join(failures)
        )

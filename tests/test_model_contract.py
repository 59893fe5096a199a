"""The contract every model and baseline honours: each check of :mod:`stream.checks`, one test.

Ids read ``<model>-<check>`` (``multitask-planted_preference``); a check a
model skips (``_unit_test_skips``) shows as skipped. Below them, the tests of
:func:`~stream.checks.check_recommender` itself and the model-specific tests
that are not contract.
"""

from __future__ import annotations

import pytest

from stream.baselines import PopularityRecommender
from stream.checks import (
    background,
    check_name,
    check_recommender,
    fresh,
    instance_for_checks,
    skips,
    yield_checks,
)
from stream.events import Item
from stream.registry import BASELINES, MODELS, build_model, model_class

#: Every model the service runs, then every anchor.
ALL_MODELS = sorted(MODELS) + list(BASELINES)


def _cases():
    for name in ALL_MODELS:
        cls = model_class(name)
        skipped = skips(cls)
        for check in yield_checks(instance_for_checks(cls)):
            marks = ()
            if check_name(check) in skipped:
                marks = pytest.mark.skip(reason=f"in {cls.__name__}._unit_test_skips")
            yield pytest.param(name, check, id=f"{name}-{check_name(check)}", marks=marks)


@pytest.mark.parametrize(("name", "check"), list(_cases()))
def test_contract(name, check):
    check(fresh(instance_for_checks(model_class(name))))


def test_the_default_model_runs_every_check():
    model = instance_for_checks(model_class("multitask"))
    assert not skips(model)
    names = {check_name(check) for check in yield_checks(model)}
    assert {"planted_preference", "domain_lists", "task_predictions"} <= names


# ----------------------------------------------------------------------------- the runner


class _LeakyPopularity(PopularityRecommender):
    """Breaks two checks: scoring a stranger creates them; a withdrawal is ignored."""

    name = "leaky"
    _unit_test_skips = {"planted_preference"}

    def recommend(self, user_ids, k, *, with_reasons=True):
        for user_id in user_ids:
            self._users.add(user_id)
        return super().recommend(user_ids, k, with_reasons=with_reasons)

    def withdraw_item(self, item_id):
        pass


def test_check_recommender_names_every_failing_check():
    with pytest.raises(AssertionError) as failed:
        check_recommender(_LeakyPopularity())
    message = str(failed.value)
    assert "_LeakyPopularity failed" in message
    assert "unknown_users_create_no_state: recommend grew the model" in message
    assert "withdrawn_items_never_recommended: withdrawn" in message
    assert "planted_preference" not in message  # skipped
    assert "pickle_round_trip" not in message  # passed
    check_recommender(PopularityRecommender())  # the honest parent passes


def test_a_skip_must_name_a_check():
    class Typo(PopularityRecommender):
        _unit_test_skips = {"planted_preferense"}

    with pytest.raises(ValueError, match="names no check"):
        check_recommender(Typo())
    for name in ALL_MODELS:
        skips(model_class(name))  # every registered skip names a check


def test_unit_test_params_build_the_checked_model():
    class Small(PopularityRecommender):
        _unit_test_params = {"half_life": 10.0}

        def __init__(self, half_life=1.0):
            super().__init__()
            self.half_life = half_life

    assert instance_for_checks(Small).half_life == 10.0
    assert instance_for_checks(Small, half_life=2.0).half_life == 2.0
    assert fresh(instance_for_checks(Small)).half_life == 10.0


# ----------------------------------------------------------------------------- model-specific


def test_multitask_version_covers_every_setting():
    """Every constructor argument is a setting the version names."""
    import inspect

    from stream.multitask import MultiTaskRecommender

    model = MultiTaskRecommender()
    settings = set(inspect.signature(MultiTaskRecommender.__init__).parameters) - {"self"}
    assert set(model.params()) == settings
    longer = MultiTaskRecommender(user_ttl_seconds=2 * model.user_ttl_seconds)
    assert longer.version != model.version
    assert model.clone().params() == model.params()


@pytest.mark.parametrize("params", [{"exploration": 0.3}, {"diversity": 0.3}])
def test_recommend_ids_follows_exploration_and_diversity(params):
    # Exploration draws random numbers: twins with the same seed and events
    # must list the same items whichever way they are asked.
    # i60..i79 are never engaged with: fresh items for the exploration slots.
    catalog = [Item(f"i{n}", {"genres": [f"g{n % 4}"]}) for n in range(80)]
    lists, explored = [], 0
    for ask_ids in (False, True):
        model = build_model("multitask", **params)
        for item in catalog:
            model.add_item(item)
        model.learn_many(background(n_events=800))
        if ask_ids:
            lists.append([model.recommend_ids(u, 10) for u in ("bg1", "bg2", "bg3")])
        else:
            ranked = model.recommend(["bg1", "bg2", "bg3"], 10, with_reasons=False)
            lists.append([[entry.item_id for entry in entries] for entries in ranked])
            explored = sum("explore" in e.scores for entries in ranked for e in entries)
    assert lists[0] == lists[1]
    assert explored > 0 if "exploration" in params else explored == 0
    assert all(len(ids) == 10 for ids in lists[1])

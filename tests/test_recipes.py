"""The training recipes: frozen dataclasses whose ``to_json`` is the ``recipe`` object of ``train.json``.

No training and no data: each family's recipe is built as its ``fit`` builds it, and its JSON (as the runner
writes it, ``json.dumps(..., indent=2)``) is pinned byte for byte to what the dict-based recipes wrote before
they became dataclasses.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from types import SimpleNamespace

import pytest
import torch

from torchzoo.train import celeba, cifar, house, linreg, moons, names, names_rnn, registry, wine
from torchzoo.train.family import TrainContext
from torchzoo.train.mnist_data import MnistFamily
from torchzoo.train.recipe import Recipe

#: sha256 (first 16 hex digits) of json.dumps(recipe, indent=2) as train.json held it before the dataclasses;
#: cifar10-cnn/full is for the 10,000-image subset (9,000 training images after validation is held out)
PINNED = {
    "celeba-multilabel/quick": "59bfc51def9df74a",
    "celeba-multilabel/full": "4578ac2883cd398f",
    "cifar10-cnn/quick": "ae07fdc2d561c886",
    "cifar10-cnn/full": "4425ad0736f97b8b",
    "house-linear/quick": "aae12d311ab7749f",
    "house-linear/full": "aae12d311ab7749f",
    "house-relu/quick": "aae12d311ab7749f",
    "house-relu/full": "aae12d311ab7749f",
    "house-prelu/quick": "aae12d311ab7749f",
    "house-prelu/full": "aae12d311ab7749f",
    "house-bentid/quick": "aae12d311ab7749f",
    "house-bentid/full": "aae12d311ab7749f",
    "house-softexp/quick": "aae12d311ab7749f",
    "house-softexp/full": "aae12d311ab7749f",
    "house-softexp2/quick": "aae12d311ab7749f",
    "house-softexp2/full": "aae12d311ab7749f",
    "linreg/quick": "9bce2e61b922ae0f",
    "linreg/full": "9bce2e61b922ae0f",
    "linreg-linear/quick": "d76b167942b1add4",
    "linreg-linear/full": "e9e5dcb6e89f64a4",
    "mnist-ffnn/quick": "f99062d10ef697d2",
    "mnist-ffnn/full": "cdd9ce8f59f2f329",
    "mnist-binary/quick": "a49fadb5aab2c4c3",
    "mnist-binary/full": "65975d1a5f51d6c6",
    "mnist-mlp/quick": "b180b8bb0ddf475d",
    "mnist-mlp/full": "e658a3597ab79e71",
    "mnist-mlp-sigmoid/quick": "f79653fe1dda5b43",
    "mnist-mlp-sigmoid/full": "51c42086c262efb0",
    "mnist-mlp-tanh/quick": "ea7fc4ece496802f",
    "mnist-mlp-tanh/full": "1e6255cbbca2c0fd",
    "mnist-mlp-elu/quick": "dfd10c648a5bd79a",
    "mnist-mlp-elu/full": "ecdf12b1abf4072b",
    "mnist-mlp-leakyrelu/quick": "ac9f7ebd53237932",
    "mnist-mlp-leakyrelu/full": "fbc3837d259020c5",
    "mnist-mlp-depth3/quick": "09338a3ce1a014aa",
    "mnist-mlp-depth3/full": "37299587fdf01356",
    "mnist-mlp-depth5/quick": "5b39f1a47047f601",
    "mnist-mlp-depth5/full": "ef49aebb2b66db8a",
    "mnist-mlp-depth7/quick": "2709c0d939c303dc",
    "mnist-mlp-depth7/full": "54e9a1baaf970d55",
    "mnist-rnn/quick": "95e6d6216bc97afd",
    "mnist-rnn/full": "bb47978de97f7d6c",
    "mnist-gru/quick": "606a1a18d93672c0",
    "mnist-gru/full": "67b7dcde2217e8f6",
    "mnist-lstm/quick": "69e6e4094e172265",
    "mnist-lstm/full": "584977b8dc106bea",
    "moons/quick": "869857b919005a4f",
    "moons/full": "7821fc3d77381c90",
    "names/quick": "14e8dfa86126cb2a",
    "names/full": "85fa5cef9339388e",
    "names-gru/quick": "074dd28daf52aadc",
    "names-gru/full": "469a76f0104d236f",
    "names-lstm/quick": "074dd28daf52aadc",
    "names-lstm/full": "469a76f0104d236f",
    "wine/quick": "95c5fa0ca7f54ebc",
    "wine/full": "d0eacf49c20ecab4",
}

#: MNIST's training split holds 55,000 images (5,000 of the 60,000 are validation)
MNIST_TRAIN = 55_000
#: the CIFAR-10 subset the pinned hashes were made on: data_batch_1, 1,000 images held out for validation
CIFAR_SUBSET = SimpleNamespace(train_index=range(9_000), val_index=range(1_000))


def recipe_of(name: str, ctx: TrainContext) -> Recipe:
    """The recipe ``name``'s family trains with under ``ctx``, built as its ``fit`` builds it."""
    spec = registry.get(name)
    family = spec.family
    if isinstance(family, MnistFamily):
        train_size = family.quick_train_size if ctx.quick else MNIST_TRAIN
        return family.run_recipe(spec, ctx, train_size=train_size)
    if isinstance(family, names.NamesFamily):  # names and names_rnn
        return family.recipe(ctx)
    builders = {
        celeba.CelebaFamily: lambda: celeba.celeba_recipe(ctx, torch.device("cpu")),
        cifar.CifarFamily: lambda: cifar.cifar_recipe(CIFAR_SUBSET, ctx),
        house.HouseFamily: lambda: house.RECIPE,
        linreg.LinregFamily: lambda: linreg.linreg_recipe(spec.options["layer"], ctx),
        moons.MoonsFamily: lambda: moons.QUICK_RECIPE if ctx.quick else moons.FULL_RECIPE,
        wine.WineFamily: lambda: wine.QUICK_RECIPE if ctx.quick else wine.FULL_RECIPE,
    }
    return builders[type(family)]()


def test_every_model_has_a_pinned_recipe() -> None:
    assert {key.split("/")[0] for key in PINNED} == set(registry.names())


@pytest.mark.parametrize("key", sorted(PINNED))
def test_recipe_json_is_what_train_json_held(key: str) -> None:
    name, profile = key.split("/")
    recipe = recipe_of(name, TrainContext(profile=profile, seed=0))
    assert dataclasses.is_dataclass(recipe) and isinstance(recipe, Recipe)
    written = json.dumps(recipe.to_json(), indent=2, sort_keys=False)
    assert hashlib.sha256(written.encode()).hexdigest()[:16] == PINNED[key], written


def test_recipes_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        names.FULL_RECIPE.epochs = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        moons.FULL_RECIPE.lr = 0.1  # type: ignore[misc]


def test_quick_profiles_differ_from_full_only_where_they_say() -> None:
    assert dataclasses.replace(names.FULL_RECIPE, epochs=3) == names.QUICK_RECIPE
    assert dataclasses.replace(names_rnn.FULL_RECIPE, epochs=1) == names_rnn.QUICK_RECIPE
    assert dataclasses.replace(wine.FULL_RECIPE, epochs=8) == wine.QUICK_RECIPE
    assert dataclasses.replace(moons.FULL_RECIPE, max_epochs=300, patience=100, restarts=1) == moons.QUICK_RECIPE


def test_to_json_leaves_out_none_writes_parts_in_place_and_tuples_as_lists() -> None:
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Part(Recipe):
        b: int
        c: tuple[int, ...]

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Whole(Recipe):
        a: str
        part: Part
        missing: str | None = None
        d: float

    written = Whole(a="x", part=Part(b=1, c=(2, 3)), d=0.5).to_json()
    assert list(written) == ["a", "b", "c", "d"]
    assert written == {"a": "x", "b": 1, "c": [2, 3], "d": 0.5}


def test_celeba_learning_rate_schedule_from_the_recipe() -> None:
    """Full profile: 100 warm-up steps from lr/100, constant, then linear to lr/300 over the last 300 of 2,100."""
    recipe = celeba.celeba_recipe(TrainContext(profile="full"), torch.device("cpu"))
    assert recipe.total_steps == 2100
    factors = [
        celeba.lr_factor(step, recipe.total_steps, recipe.warmup_steps, recipe.decay_steps) for step in range(2100)
    ]
    assert factors[0] == pytest.approx(0.01) and factors[99] == 1.0
    assert set(factors[99:1801]) == {1.0}
    assert factors[1801] == pytest.approx(299 / 300) and factors[-1] == pytest.approx(1 / 300)

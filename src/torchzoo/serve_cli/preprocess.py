"""Turn what a person has at hand into the model's input arrays, as the manifest's preprocessing says."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from torchzoo.errors import UserInputError
from torchzoo.text_codec import encode_names


def names_one_hot(inputs: Sequence[Any], params: dict[str, Any]) -> tuple[np.ndarray, ...]:
    if not all(isinstance(x, str) for x in inputs):
        raise UserInputError("this model takes names (strings)")
    return (encode_names(list(inputs), alphabet=params["alphabet"], max_length=params["max_length"]),)


PREPROCESSORS: dict[str, Callable[[Sequence[Any], dict[str, Any]], tuple[np.ndarray, ...]]] = {
    "names_one_hot": names_one_hot,
}


def preprocess(inputs: Sequence[Any], params: dict[str, Any]) -> tuple[np.ndarray, ...]:
    kind = params.get("kind")
    if kind not in PREPROCESSORS:
        raise UserInputError(f"this runtime does not know the preprocessing '{kind}'; upgrade torchzoo")
    return PREPROCESSORS[kind](inputs, params)

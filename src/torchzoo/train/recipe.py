"""The base type of every family's training recipe, and how a recipe is written into ``train.json``.

A recipe is a frozen dataclass: the numbers the family's ``fit`` trains with (read as typed attributes)
and the words that describe the choice, field by field in the order ``train.json`` lists them. Families
that train the same way share one type (:class:`torchzoo.train.mnist_data.MnistRecipe`,
:class:`torchzoo.train.names.NamesRecipe`); the others declare their own next to their ``fit``. How each
recipe was chosen (the runs, the rejected alternatives, the scores) is in ``docs/recipes.md``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """Base class of the recipes: adds :meth:`to_json`, the ``recipe`` object of ``train.json``."""

    def to_json(self) -> dict[str, Any]:
        """The fields in declaration order, except those left ``None`` (a field one family does not have);
        a field holding another :class:`Recipe` is written in place, its own fields at that position."""
        written: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, Recipe):
                written.update(value.to_json())
            elif value is not None:
                written[field.name] = _plain(value)
        return written


def _plain(value: Any) -> Any:
    """A field value as JSON holds it: tuples become lists (dataclasses.asdict keeps them tuples)."""
    return [_plain(v) for v in value] if isinstance(value, tuple | list) else value

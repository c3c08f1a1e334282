"""The JavaScript client, shipped with the package so ``torchzoo embed`` can bundle it: ``client.mjs``
(the one copy; js/ and examples/ import it from here) and ``page.html`` (the bundle's web page)."""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

CLIENT = "client.mjs"
PAGE = "page.html"


def resource(name: str) -> Traversable:
    return files(__name__) / name

"""Text: the char-RNN's codec (fold a name to the tutorial's ASCII alphabet and one-hot encode it), and text
shown to people (:func:`printable`, :func:`did_you_mean`).

Numpy only, so training (which wraps the arrays in tensors) and the torch-free runtime share one
implementation. The alphabet is the tutorial's ``string.ascii_letters + " .,;'"`` (57 symbols).
"""

from __future__ import annotations

import difflib
import string
import unicodedata
from collections.abc import Sequence

import numpy as np

from torchzoo.core.errors import UserInputError
from torchzoo.core.limits import MAX_RAW_NAME_CHARS

ALPHABET = string.ascii_letters + " .,;'"
MAX_LENGTH = 64
_INDEX = {ch: i for i, ch in enumerate(ALPHABET)}
#: Unicode categories never shown raw: controls, format characters (bidi overrides), surrogates, unassigned
_HIDDEN = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def printable(text: str, limit: int | None = 200) -> str:
    """``text`` safe to show on a terminal: control and format characters escaped (``\\x1b``, ``\\u202e``),
    cut to ``limit`` characters (None: whole). Data stays raw in the API and in JSON; this is for what a
    person reads."""
    cut = text if limit is None else text[:limit]
    shown = "".join(
        ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch) in _HIDDEN else ch for ch in cut
    )
    return shown + ("..." if limit is not None and len(text) > limit else "")


def did_you_mean(value: str, choices: Sequence[str], list_known: bool = False) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices``; with none close, ``"; known: a, b"`` when
    ``list_known`` (else nothing). For one-line errors that refuse a name."""
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.5)
    if close:
        return f"; did you mean '{close[0]}'?"
    return f"; known: {', '.join(choices)}" if list_known else ""


def fold_to_ascii(name: str, alphabet: str = ALPHABET, strict: bool = False) -> str:
    """Fold accents away (NFD, drop combining marks), as the tutorial's ``unicodeToAscii``.

    Lenient (training): characters outside the alphabet are dropped, as in the tutorial.
    Strict (runtime): they are an error naming them, so "R0ssi" is refused rather than read as "Rssi".
    """
    if len(name) > MAX_RAW_NAME_CHARS:
        raise UserInputError(f"a name of {len(name):,} characters; at most {MAX_RAW_NAME_CHARS:,} are read")
    decomposed = unicodedata.normalize("NFKD", name.strip())
    kept, unknown = [], []
    for ch in decomposed:
        if unicodedata.category(ch) == "Mn":
            continue
        (kept if ch in alphabet else unknown).append(ch)
    if strict and unknown:
        shown = "".join(dict.fromkeys(unknown))[:10]
        raise UserInputError(
            f"name {name[:40]!r} has characters the model does not know: {shown!r} "
            f'(it knows ASCII letters and " .,;\'", accents are folded away)'
        )
    return "".join(kept)


def encode_names(
    names: Sequence[str], alphabet: str = ALPHABET, max_length: int = MAX_LENGTH, strict: bool = True
) -> np.ndarray:
    """One-hot encode a batch of names to float32 ``[batch, longest, len(alphabet)]``; zero rows pad."""
    if len(names) == 0:
        raise UserInputError("no names given")
    index = _INDEX if alphabet == ALPHABET else {ch: i for i, ch in enumerate(alphabet)}
    folded = [fold_to_ascii(n, alphabet, strict=strict) for n in names]
    for raw, name in zip(names, folded, strict=True):
        if not any(ch.isalpha() for ch in name):
            raise UserInputError(f"name {raw[:40]!r} has no letters; give a surname such as 'Rossi'")
        if len(name) > max_length:
            raise UserInputError(f"name {raw[:40]!r}... is {len(name)} characters; at most {max_length}")
    out = np.zeros((len(folded), max(len(n) for n in folded), len(alphabet)), dtype=np.float32)
    for b, name in enumerate(folded):
        out[b, np.arange(len(name)), [index[ch] for ch in name]] = 1.0
    return out

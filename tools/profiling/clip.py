"""Values shown shortened, masked first.

A secret cut short is no longer the secret the masker knows: a 59-character prefix of a
longer key would pass through every later masking untouched. So every place in profiling that
shortens text taken from the data (examples, top values, class labels, plot labels, bad rows,
parser messages) masks it before cutting it.
"""

from __future__ import annotations

from mltrainer.state.masking import Masker


def clip(value: object, limit: int, masker: Masker | None, ellipsis: str = "…") -> str:
    """``value`` as text of at most ``limit`` characters, its secrets masked before the cut."""
    text = str(value)
    if masker is not None:
        text = masker.mask(text)
    if len(text) <= limit:
        return text
    return text[: limit - len(ellipsis)] + ellipsis

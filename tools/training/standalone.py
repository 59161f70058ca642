"""The standalone predict.py written beside each final model, and the meta.json it reads.

predict.py is predict_template.py (a real module of this package, linted and type-checked) with
its generated constants filled in: the model file's sha256, the sources of the engine's custom
classes (inlined, so that the script needs nothing from mltrainer), and the allow-list of types.
"""

from __future__ import annotations

import importlib.resources
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from mltrainer.state.errors import InternalError
from mltrainer.tools.training.trusted import CUSTOM_MODULE, TRUSTED_TYPES

TEMPLATE = "predict_template.py"
GENERATED = ("GENERATED_ON", "MODEL_SHA256", "CUSTOM_MODULE", "CUSTOM_SOURCES", "TRUSTED_TYPES")
# One generated line: a name at the start of a line, an optional annotation, a value.
_LINE = re.compile(rf"^(?P<name>{'|'.join(GENERATED)})(?P<annotation>: [^=\n]+)? = .*$", re.M)


def template_text() -> str:
    package = importlib.resources.files("mltrainer.tools.training")
    return package.joinpath(TEMPLATE).read_text(encoding="utf-8")


def custom_sources() -> tuple[str, ...]:
    """The sources of the engine's custom classes, in the order predict.py runs them."""
    from mltrainer.tools.training.engine import custom

    package = importlib.resources.files(custom.__name__)
    return tuple(
        package.joinpath(f"{name}.py").read_text(encoding="utf-8") for name in custom.SOURCE_MODULES
    )


def _python_literal(text: str) -> str:
    """``text`` as a Python string literal, kept readable (raw, triple-quoted) when that is exact."""
    if text and "'''" not in text and text.endswith("\n") and "\r" not in text:
        return "r'''" + text + "'''"
    return repr(text)


def _tuple_literal(texts: Sequence[str]) -> str:
    if not texts:
        return "()"
    return "(\n" + "".join(f"    {_python_literal(t)},\n" for t in texts) + ")"


def predict_script(
    model_sha256: str,
    *,
    sources: Sequence[str] | None = None,
    custom_module: str = CUSTOM_MODULE,
    trusted_types: Sequence[str] = TRUSTED_TYPES,
) -> str:
    """The text of predict.py for a folder holding model.skops (of ``model_sha256``) and
    meta.json.

    ``sources`` default to the engine's custom modules, registered as ``custom_module`` before
    the model is loaded so that skops finds their classes; the model may hold only
    ``trusted_types`` (the project's allow-list).
    """
    values = {
        "GENERATED_ON": repr(f"{datetime.now(UTC):%Y-%m-%d %H:%M UTC}"),
        "MODEL_SHA256": repr(model_sha256),
        "CUSTOM_MODULE": repr(custom_module),
        "CUSTOM_SOURCES": _tuple_literal(custom_sources() if sources is None else sources),
        "TRUSTED_TYPES": _tuple_literal(sorted(trusted_types)),
    }
    template = template_text()
    found = [match.group("name") for match in _LINE.finditer(template)]
    if sorted(found) != sorted(GENERATED):
        raise InternalError(f"{TEMPLATE} must hold each generated line once; found {found}")

    def fill(match: re.Match[str]) -> str:
        return f"{match.group('name')}{match.group('annotation') or ''} = {values[match['name']]}"

    # One pass over the template: text inside the inlined sources is never rewritten.
    return _LINE.sub(fill, template)


def meta_json(
    task: str,
    features: Sequence[str],
    classes: Sequence[Any] = (),
    *,
    target: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """A ``meta.json`` as predict.py reads it (the engine's is ModelMeta, a superset)."""
    meta = {
        "task": task,
        "target": target,
        "features": list(features),
        "classes": [str(c) for c in classes],
        **(extra or {}),
    }
    return json.dumps(meta, indent=2)

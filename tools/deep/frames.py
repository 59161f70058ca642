"""Deep-learning layouts of a table: which columns hold images, texts, tags, pairs or chats.

A column is recognised by its name (the usual names of Hub datasets and Kaggle sets) and by its
values (a list of role/content dicts, image paths or bytes, word lists). The first layout that
fits wins, in the order of ``LAYOUTS``; a table that fits none gets an error listing them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrainer.state.errors import DatasetError
from mltrainer.tools.deep.language import detect_language
from mltrainer.tools.deep.models import DeepLayout, LanguagePair, LayoutColumns

if TYPE_CHECKING:
    import pandas as pd

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
MESSAGES = ("messages", "conversations", "conversation", "chat")
INSTRUCTION = ("instruction", "prompt", "question", "query")
CONTEXT = ("input", "context")
RESPONSE = ("response", "output", "answer", "completion", "chosen")
TOKENS = ("tokens", "words")
TAGS = ("ner_tags", "tags", "labels", "ner", "pos_tags", "chunk_tags")
IMAGE = ("image", "image_path", "img", "path", "file", "filename", "file_name", "image_file")
LABEL = ("label", "labels", "class", "category", "target", "y", "score", "value")
TEXT = ("text", "sentence", "review", "content", "comment", "tweet", "document", "body")
SUMMARY_PAIRS = (
    ("document", "summary"),
    ("article", "highlights"),
    ("article", "summary"),
    ("text", "summary"),
    ("dialogue", "summary"),
)
PAIRS = (("source", "target"), ("src", "tgt"), *SUMMARY_PAIRS)
EXPECTED = (
    "a chat 'messages' column (lists of role/content dicts); 'instruction' + 'response' "
    "columns; 'tokens' + 'ner_tags' word lists; an image column (paths or bytes) with a "
    "'label' or numeric target; a pair of text columns (source/target, document/summary, "
    "or two language-code columns such as en/de, or a 'translation' dict column); or a "
    "text column with a 'label' column"
)
REGRESSION_MIN_UNIQUE = 20


def read_table(path: Path) -> pd.DataFrame:
    """A CSV, TSV, Parquet, JSON or JSONL file as a frame (nested values kept as Python)."""
    import pandas as pd

    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix == ".gz" else path.suffix.lower()
    try:
        if suffix.startswith(".parquet") or suffix == ".pq":
            import pyarrow.parquet as pq

            from mltrainer.tools.profiling.reader import arrow_to_frame

            return arrow_to_frame(pq.read_table(path))
        if suffix.startswith(".jsonl") or suffix.startswith(".ndjson"):
            return pd.read_json(path, lines=True, dtype=False)
        if suffix.startswith(".json"):
            return pd.read_json(path, dtype=False)
        if suffix.startswith((".tsv", ".tab")):
            return pd.read_csv(path, sep="\t")
        return pd.read_csv(path)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise DatasetError(
            f"{path.name} could not be read as a table: {exc}",
            next_step="Pass a CSV, TSV, Parquet, JSON or JSONL file.",
        ) from exc


def detect_frame(frame: pd.DataFrame, path: str) -> DeepLayout:
    """The deep-learning layout of a loaded table; a DatasetError when none fits."""
    if frame.empty:
        raise DatasetError(f"{path} has no rows.", next_step="Pass a dataset with records.")
    names = {str(c).lower(): str(c) for c in frame.columns}
    for layout in LAYOUTS:
        found = layout(frame, names, path)
        if found is not None:
            return found
    shown = ", ".join(map(str, list(frame.columns)[:20]))
    raise DatasetError(
        f"{path} does not have a deep-learning layout (its columns: {shown}).",
        next_step=f"Expected {EXPECTED}. Rename the columns, or name the task and columns.",
    )


def may_have_layout(columns: Sequence[str], values: Mapping[str, Sequence[object]]) -> bool:
    """Whether any layout could fit a table with these columns and first values (missing ones
    left out). False means every detector would find nothing, so the caller need not load the
    table into pandas to learn it (the server sniffs every tabular train_model this way)."""
    names = {str(c).lower(): str(c) for c in columns}

    def both(first: tuple[str, ...], second: tuple[str, ...]) -> bool:
        return _pick(names, first) is not None and _pick(names, second) is not None

    if any(n in names for n in (*MESSAGES, *IMAGE, "translation")):
        return True
    if both(INSTRUCTION, RESPONSE) or both(TOKENS, TAGS) or both(TEXT, LABEL):
        return True
    if any(a in names and b in names for a, b in PAIRS) or _language_columns(names):
        return True
    return any(_images_in(list(values.get(c, ()))[:20]) for c in columns)


def _pick(names: dict[str, str], candidates: tuple[str, ...]) -> str | None:
    return next((names[c] for c in candidates if c in names), None)


def _strings(series: pd.Series) -> pd.Series:
    return series.dropna().astype(str)


def _p95_words(series: pd.Series) -> int:
    counts = _strings(series).str.split().str.len()
    return int(counts.quantile(0.95)) if len(counts) else 0


def _layout(frame: pd.DataFrame, path: str, **fields: Any) -> DeepLayout:
    return DeepLayout(path=path, n_records=len(frame), **fields)


def _chat(frame: pd.DataFrame, names: dict[str, str], path: str) -> DeepLayout | None:
    column = _pick(names, MESSAGES)
    if column is None:
        return None
    bad = [i for i, v in enumerate(frame[column].head(200)) if not _is_chat(v)]
    if bad:
        raise DatasetError(
            f"{path}: column '{column}' row {bad[0]} is not a list of messages.",
            next_step="Each value must be a list of {'role': 'user'|'assistant'|'system', "
            "'content': text} dicts (or ShareGPT's {'from', 'value'}).",
        )
    contents = [
        str(m.get("content", m.get("value", ""))) for v in frame[column].head(500) for m in v
    ]
    return _layout(
        frame,
        path,
        kind="chat",
        tasks=["text_generation"],
        columns=LayoutColumns(messages=column),
        language=detect_language(contents),
        text_words=_p95_words(frame[column].head(500).map(_chat_text)),
    )


def _chat_text(value: Any) -> str:
    return " ".join(str(m.get("content", m.get("value", ""))) for m in value)


def _is_chat(value: Any) -> bool:
    if hasattr(value, "tolist"):
        value = value.tolist()
    return (
        isinstance(value, list)
        and bool(value)
        and all(
            isinstance(m, dict)
            and ({"role", "content"} <= m.keys() or {"from", "value"} <= m.keys())
            for m in value
        )
    )


def _instruction(frame: pd.DataFrame, names: dict[str, str], path: str) -> DeepLayout | None:
    prompt, response = _pick(names, INSTRUCTION), _pick(names, RESPONSE)
    if prompt is None or response is None:
        return None
    words = frame[prompt].astype(str) + " " + frame[response].astype(str)
    return _layout(
        frame,
        path,
        kind="instruction",
        tasks=["text_generation"],
        columns=LayoutColumns(instruction=prompt, context=_pick(names, CONTEXT), response=response),
        language=detect_language(words.head(500)),
        text_words=_p95_words(words),
    )


def _tokens(frame: pd.DataFrame, names: dict[str, str], path: str) -> DeepLayout | None:
    tokens, tags = _pick(names, TOKENS), _pick(names, TAGS)
    if tokens is None or tags is None:
        return None
    rows = list(zip(frame[tokens], frame[tags], strict=True))
    for i, (words, labels) in enumerate(rows):
        if len(list(words)) != len(list(labels)):
            raise DatasetError(
                f"{path}: row {i} has {len(list(words))} tokens but {len(list(labels))} tags.",
                next_step="Give every token exactly one tag.",
            )
    classes = sorted({str(t) for _, labels in rows for t in labels})
    text = [" ".join(map(str, words)) for words, _ in rows[:500]]
    return _layout(
        frame,
        path,
        kind="token_table",
        tasks=["token_classification"],
        columns=LayoutColumns(tokens=tokens, tags=tags),
        classes=classes,
        language=detect_language(text),
        text_words=max(len(list(words)) for words, _ in rows),
    )


def _images(frame: pd.DataFrame, names: dict[str, str], path: str) -> DeepLayout | None:
    column = _pick(names, IMAGE) or next(
        (str(c) for c in frame.columns if _image_values(frame[c])), None
    )
    if column is None or not _image_values(frame[column]):
        return None
    label = _pick(names, tuple(n for n in LABEL if names.get(n) != column))
    others = [str(c) for c in frame.columns if str(c) != column]
    if label is None and len(others) == 1:
        label = others[0]  # the one other column can only be the target
    if label is None:
        raise DatasetError(
            f"{path}: image column '{column}' found but no label or target column.",
            next_step=f"Add a column named one of {', '.join(LABEL)}.",
        )
    regression = _is_regression(frame[label])
    return _layout(
        frame,
        path,
        kind="image_table",
        tasks=["image_regression"] if regression else ["image_classification"],
        columns=LayoutColumns(image=column, **{"value" if regression else "label": label}),
        classes=[] if regression else sorted(_strings(frame[label]).unique().tolist()),
    )


def _image_values(series: pd.Series) -> bool:
    return _images_in(series.dropna().head(20).tolist())


def _images_in(sample: Sequence[object]) -> bool:
    """Whether the first present values of a column are images (bytes) or image paths."""
    if not sample:
        return False
    if all(
        isinstance(v, bytes | bytearray) or (isinstance(v, dict) and "bytes" in v) for v in sample
    ):
        return True
    return all(isinstance(v, str) and v.lower().endswith(IMAGE_SUFFIXES) for v in sample)


def _is_regression(series: pd.Series) -> bool:
    import pandas as pd

    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    return bool(numeric and series.nunique() > REGRESSION_MIN_UNIQUE)


def _pair(frame: pd.DataFrame, names: dict[str, str], path: str) -> DeepLayout | None:
    found = split_translation_column(frame, names)
    if found is None:
        found = next(
            ((names[a], names[b]) for a, b in PAIRS if a in names and b in names), None
        ) or _language_columns(names)
    if found is None:
        return None
    source, target = found
    pair = LanguagePair(
        source=detect_language(_strings(frame[source]).head(500)),
        target=detect_language(_strings(frame[target]).head(500)),
    )
    src_words, tgt_words = _p95_words(frame[source]), _p95_words(frame[target])
    summary = (source.lower(), target.lower()) in SUMMARY_PAIRS
    differ = "und" not in (pair.source, pair.target) and pair.source != pair.target
    if differ and not summary:
        tasks: list[Any] = ["translation"]
    elif summary or tgt_words < 0.75 * src_words:
        tasks = ["summarization"]
    else:
        tasks = ["translation", "summarization"]
    problems = []
    if tasks[0] == "translation" and not differ:
        problems.append(
            f"The languages of '{source}' and '{target}' could not be told apart "
            f"({pair.source} → {pair.target}); name the task if this is not a translation."
        )
    return _layout(
        frame,
        path,
        kind="text_pair",
        tasks=tasks,
        columns=LayoutColumns(source=source, target=target),
        language=pair.source,
        languages=pair,
        text_words=src_words,
        target_words=tgt_words,
        problems=problems,
    )


def split_translation_column(
    frame: pd.DataFrame, names: dict[str, str] | None = None
) -> tuple[str, str] | None:
    """Hub translation sets: one 'translation' column of {lang: text} dicts, split in two
    (the frame gains a column per language)."""
    names = names if names is not None else {str(c).lower(): str(c) for c in frame.columns}
    column = names.get("translation")
    if column is None or not isinstance(frame[column].iloc[0], dict):
        return None
    languages = list(frame[column].iloc[0].keys())
    if len(languages) != 2:
        return None
    for language in languages:
        frame[language] = [row.get(language) for row in frame[column]]
    return languages[0], languages[1]


def _language_columns(names: dict[str, str]) -> tuple[str, str] | None:
    from mltrainer.tools.deep.language import STOPWORDS

    codes = [names[n] for n in names if n in STOPWORDS or n in ("ru", "zh", "ja", "ar", "ko")]
    return (codes[0], codes[1]) if len(codes) == 2 else None


def _text(frame: pd.DataFrame, names: dict[str, str], path: str) -> DeepLayout | None:
    text, label = _pick(names, TEXT), _pick(names, LABEL)
    if text is None or label is None or _is_regression(frame[label]):
        return None
    return _layout(
        frame,
        path,
        kind="text_table",
        tasks=["text_classification"],
        columns=LayoutColumns(text=text, label=label),
        classes=sorted(_strings(frame[label]).unique().tolist()),
        language=detect_language(_strings(frame[text]).head(500)),
        text_words=_p95_words(frame[text]),
    )


Detector = Callable[["pd.DataFrame", dict[str, str], str], DeepLayout | None]
LAYOUTS: tuple[Detector, ...] = (_chat, _instruction, _tokens, _images, _pair, _text)

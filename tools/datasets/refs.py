"""Dataset references: parsed once, at the edge, into a typed ``DatasetRef``.

Grammar (the same text the download_dataset docstring shows the caller)::

    kaggle:OWNER/SLUG[@VERSION][/FILE]        a Kaggle dataset (VERSION: an integer)
    kaggle-competition:SLUG[/FILE]            a Kaggle competition's data
    hf:OWNER/NAME[@REVISION][:CONFIG[/SPLIT]] a Hugging Face dataset repository; with CONFIG,
                                              the Hub's Parquet conversion of that config
    https://HOST/PATH                         a file (archives are extracted safely)
    PATH                                      a local file or directory under the data roots
    ds_XXXXXXXXXXXX[/FILE]                    a dataset downloaded before (its dataset_id)
    sql:secret://NAME?query=SELECT ...        the rows of one SELECT (or WITH) query, taken raw:
                                              nothing after query= is URL-decoded
    sql:secret://NAME#TABLE                   a whole table (SCHEMA.TABLE in another schema)

Any but sql: may end with ``#FILE`` to pick one file inside the dataset. Parsing is lexical;
what a path or URL may reach is decided by ``mltrainer.state.guard`` where it is used, and what
a query may do by ``tools.datasets.sql_query``.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from pydantic import BaseModel

from mltrainer.state.errors import InvalidInput, PermissionDenied
from mltrainer.state.guard import refuse_traversal
from mltrainer.state.secret_refs import PREFIX, parse_reference
from mltrainer.tools.datasets.models import Source

SLUG = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
KAGGLE_RE = re.compile(
    rf"^(?P<owner>{SLUG})/(?P<name>{SLUG})(?:@(?P<version>\d{{1,6}}))?(?:/(?P<file>.+))?$"
)
COMPETITION_RE = re.compile(rf"^(?P<slug>{SLUG})(?:/(?P<file>.+))?$")
HF_RE = re.compile(
    rf"^(?P<owner>{SLUG})/(?P<name>{SLUG})"
    r"(?:@(?P<revision>[A-Za-z0-9][A-Za-z0-9._/-]{0,199}))?"
    rf"(?::(?P<config>{SLUG})(?:/(?P<split>{SLUG}))?)?$"
)
DATASET_ID_RE = re.compile(r"^ds_[0-9a-f]{12}$")
SYNTAX_HINT = (
    "Use kaggle:OWNER/SLUG, kaggle-competition:SLUG, hf:OWNER/NAME[@REVISION][:CONFIG[/SPLIT]], "
    "an https:// URL, a dataset_id, sql:secret://NAME#TABLE or sql:secret://NAME?query=SELECT ..., "
    "or a local path under the allowed roots."
)
SQL_HINT = (
    "Write sql:secret://NAME#TABLE for a whole table, or sql:secret://NAME?query=SELECT ... for "
    "the rows of one query; NAME is a secret holding the database URL (see list_secrets)."
)
MAX_TABLE_NAME = 200


class DatasetRef(BaseModel):
    source: Source | None = None  # None for a dataset_id
    text: str  # canonical form, without the file pick
    owner: str | None = None
    name: str | None = None
    version: int | None = None
    revision: str | None = None
    config: str | None = None
    split: str | None = None
    url: str | None = None
    path: str | None = None
    dataset_id: str | None = None
    file: str | None = None  # one file picked inside the dataset
    secret: str | None = None  # sql: the secret://NAME holding the database URL
    query: str | None = None  # sql: the query as given (checked once the dialect is known)
    table: str | None = None  # sql: TABLE or SCHEMA.TABLE, quoted as identifiers when used


def parse_ref(ref: str) -> DatasetRef:
    """Parse and lexically validate a reference; no filesystem or network access."""
    text = ref.strip()
    if not text or "\x00" in text or len(text) > 4096:
        raise InvalidInput("The dataset reference is empty or malformed.", next_step=SYNTAX_HINT)
    if text.startswith("sql:"):  # before the '#' split: a query may hold a '#'
        return _sql(text[len("sql:") :])
    text, _, fragment = text.partition("#")
    file = safe_member(fragment) if fragment else None
    scheme, sep, rest = text.partition(":")
    if sep and scheme == "kaggle":
        return _kaggle(rest, file)
    if sep and scheme == "kaggle-competition":
        return _competition(rest, file)
    if sep and scheme == "hf":
        return _hf(rest, file)
    if sep and scheme.lower() in ("http", "https", "ftp", "file", "s3", "gs"):
        return _url(text, file)
    head, slash, tail = text.partition("/")
    if DATASET_ID_RE.fullmatch(head):
        pick = safe_member(tail) if slash else file
        return DatasetRef(text=head, dataset_id=head, file=pick)
    return DatasetRef(source="local", text=text, path=refuse_traversal(text), file=file)


def _kaggle(rest: str, file: str | None) -> DatasetRef:
    match = KAGGLE_RE.fullmatch(rest)
    if not match:
        raise InvalidInput(
            f"'kaggle:{rest}' is not a Kaggle dataset reference.",
            next_step="Write it as kaggle:OWNER/SLUG (e.g. kaggle:uciml/iris), optionally "
            "with @VERSION and /FILE.",
        )
    version = int(match["version"]) if match["version"] else None
    text = f"kaggle:{match['owner']}/{match['name']}" + (f"@{version}" if version else "")
    pick = safe_member(match["file"]) if match["file"] else file
    return DatasetRef(
        source="kaggle",
        text=text,
        owner=match["owner"],
        name=match["name"],
        version=version,
        file=pick,
    )


def _competition(rest: str, file: str | None) -> DatasetRef:
    match = COMPETITION_RE.fullmatch(rest)
    if not match:
        raise InvalidInput(
            f"'kaggle-competition:{rest}' is not a competition reference.",
            next_step="Write it as kaggle-competition:SLUG (e.g. kaggle-competition:titanic).",
        )
    pick = safe_member(match["file"]) if match["file"] else file
    return DatasetRef(
        source="kaggle-competition",
        text=f"kaggle-competition:{match['slug']}",
        name=match["slug"],
        file=pick,
    )


def _hf(rest: str, file: str | None) -> DatasetRef:
    match = HF_RE.fullmatch(rest)
    if not match or (match["revision"] and ".." in match["revision"]):
        raise InvalidInput(
            f"'hf:{rest}' is not a Hugging Face dataset reference.",
            next_step="Write it as hf:OWNER/NAME, optionally with @REVISION and :CONFIG or "
            ":CONFIG/SPLIT (e.g. hf:scikit-learn/iris, hf:stanfordnlp/imdb:plain_text/train).",
        )
    if match["revision"] and match["config"]:
        raise InvalidInput(
            "A config selects the Hub's Parquet conversion, which has its own revision; "
            "give either @REVISION or :CONFIG, not both.",
            next_step="Drop @REVISION, or drop :CONFIG and pick files with the files argument.",
        )
    text = f"hf:{match['owner']}/{match['name']}"
    text += f"@{match['revision']}" if match["revision"] else ""
    text += f":{match['config']}" if match["config"] else ""
    text += f"/{match['split']}" if match["split"] else ""
    return DatasetRef(
        source="hf",
        text=text,
        owner=match["owner"],
        name=match["name"],
        revision=match["revision"],
        config=match["config"],
        split=match["split"],
        file=file,
    )


def _sql(rest: str) -> DatasetRef:
    """``secret://NAME?query=...`` or ``secret://NAME#TABLE``; the query is checked later, by
    the database's own dialect, and the table is only ever used as quoted identifiers."""
    if not rest.startswith(PREFIX):  # not echoed: it may be a URL with its password
        raise InvalidInput(
            "A sql: reference names the database by a secret, never by its URL.", next_step=SQL_HINT
        )
    query_at, table_at = rest.find("?query="), rest.find("#")
    if query_at >= 0 and (table_at < 0 or query_at < table_at):
        secret, query, table = rest[:query_at], rest[query_at + len("?query=") :].strip(), None
    elif table_at >= 0:
        secret, query, table = rest[:table_at], None, rest[table_at + 1 :].strip()
    else:
        secret, query, table = rest, None, None
    name = parse_reference(secret)
    if query is None and table is None:
        raise InvalidInput(f"sql:{secret} names neither a table nor a query.", next_step=SQL_HINT)
    if query is not None and not query:
        raise InvalidInput("The query after '?query=' is empty.", next_step=SQL_HINT)
    if table is not None:
        table = _table_name(table)
    text = f"sql:{PREFIX}{name}" + (f"?query={query}" if query is not None else f"#{table}")
    return DatasetRef(source="sql", text=text, secret=PREFIX + name, query=query, table=table)


def _table_name(table: str) -> str:
    parts = table.split(".")
    if (
        not table
        or len(table) > MAX_TABLE_NAME
        or len(parts) > 2
        or not all(part.strip() == part and part.isprintable() and part for part in parts)
    ):
        raise InvalidInput(
            f"'{table[:80]}' is not a table name.",
            next_step="Write TABLE or SCHEMA.TABLE as the database spells it (case counts); for "
            "anything else use ?query=SELECT ...",
        )
    return table


def _url(text: str, file: str | None) -> DatasetRef:
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise PermissionDenied(
            f"Refusing to download from '{parts.scheme}://{parts.hostname or ''}': only https:// "
            "URLs are allowed.",
            next_step="Use the https:// address of the file.",
        )
    return DatasetRef(source="url", text=text, url=text, file=file)


def safe_member(name: str) -> str:
    """A relative path inside a dataset: no absolute path, drive, '..' or empty part."""
    clean = name.replace("\\", "/")
    pure = PurePosixPath(clean)
    if (
        not clean
        or "\x00" in clean
        or pure.is_absolute()
        or re.match(r"^[A-Za-z]:", clean)
        or any(part in ("..", "") for part in clean.split("/"))
    ):
        raise PermissionDenied(
            f"Refusing the file name '{name}': it must be a relative path inside the dataset.",
            next_step="Use a path as listed in download_dataset's files, e.g. 'train.csv'.",
        )
    return str(pure)

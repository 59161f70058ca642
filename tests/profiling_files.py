"""Generators of the awkward files profiling and reading must handle (real files, real bytes)."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

ROWS = "name,city,amount\nAndré,Zürich,1.5\nBjörk,Reykjavík,2.25\nÇelik,İzmir,3\n"


def text_table(path: Path, encoding: str, sep: str = ",", text: str = ROWS) -> Path:
    path.write_bytes(text.replace(",", sep).encode(encoding))
    return path


def sniffing_cases(folder: Path) -> dict[str, tuple[Path, dict]]:
    """Files and what sniffing must find in each: {case: (path, expected TableFormat fields)}."""
    folder.mkdir(parents=True, exist_ok=True)
    semicolon_comma = "name;amount\nAndré;1,5\nBjörk;2,25\nÇelik;3,0\n"
    return {
        "utf-8 comma": (text_table(folder / "utf8.csv", "utf-8"), {"encoding": "utf-8"}),
        "utf-8 bom": (text_table(folder / "bom.csv", "utf-8-sig"), {"encoding": "utf-8-sig"}),
        "utf-16 bom tab": (
            text_table(folder / "u16.tsv", "utf-16", "\t"),
            {"encoding": "utf-16", "delimiter": "\t"},
        ),
        "utf-16-le no bom": (
            text_table(folder / "u16le.csv", "utf-16-le"),
            {"encoding": "utf-16-le"},
        ),
        "cp1252 semicolon decimal comma": (
            text_table(folder / "cp1252.csv", "cp1252", text=semicolon_comma),
            {"encoding": "cp1252", "delimiter": ";", "decimal": ","},
        ),
        "pipe": (text_table(folder / "pipe.csv", "utf-8", "|"), {"delimiter": "|"}),
        "excel export: cp1252, semicolon, CRLF": (
            _write(folder / "excel.csv", semicolon_comma.replace("\n", "\r\n"), "cp1252"),
            {
                "encoding": "cp1252",
                "delimiter": ";",
                "decimal": ",",
                "column_names": ["name", "amount"],
            },
        ),
        "thousands dot": (
            _write(folder / "thousands.csv", "id;price\n1;1.234,50\n2;12.000,00\n3;7,25\n"),
            {"delimiter": ";", "decimal": ",", "thousands": "."},
        ),
        "no header": (
            _write(folder / "noheader.csv", "1,2.5,3\n4,5.5,6\n7,8.5,9\n10,11.5,12\n"),
            {"header": False, "column_names": ["column_1", "column_2", "column_3"]},
        ),
        "quoted separators and newlines": (
            _write(
                folder / "quoted.csv", 'a,b\n"hello, world",1\n"two\nlines",2\n"say ""hi""",3\n'
            ),
            {"multiline_values": True, "column_names": ["a", "b"]},
        ),
        "gzip": (_gzip(folder / "rows.csv.gz", ROWS), {"compression": "gzip"}),
        "one-table zip": (
            _zip(folder / "rows.csv.zip", {"inner/rows.csv": ROWS}),
            {"compression": "zip"},
        ),
        "jsonl": (
            _write(folder / "rows.jsonl", '{"a": 1, "b": "x"}\n{"a": 2, "b": "y"}\n'),
            {"kind": "jsonl"},
        ),
        "json array": (_write(folder / "rows.json", '[{"a": 1}, {"a": 2}]'), {"kind": "json"}),
        "parquet": (_parquet(folder / "rows.parquet"), {"kind": "parquet"}),
    }


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def _gzip(path: Path, text: str) -> Path:
    path.write_bytes(gzip.compress(text.encode()))
    return path


def _zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return path


def _parquet(path: Path) -> Path:
    pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]}).to_parquet(path)
    return path


def bad_cases(folder: Path) -> dict[str, tuple[Path, str]]:
    """Files that must fail with a DatasetError containing the given text."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a_directory").mkdir(exist_ok=True)
    (folder / "a_directory" / "inside.csv").write_text("a\n1\n")
    many = "".join(f"{i},{i * 2}\n" for i in range(200))
    late_mixed = ("a,b\n0,café\n" + "".join(f"{i},plain\n" for i in range(80_000))).encode()
    return {
        "missing": (folder / "nope.csv", "No file at"),
        "directory": (folder / "a_directory", "inside.csv"),
        "empty": (_write(folder / "empty.csv", ""), "empty"),
        "whitespace": (_write(folder / "blank.csv", "\n \n\t\n"), "whitespace"),
        "binary": (
            _bytes(folder / "image.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 50),
            "binary",
        ),
        "nul bytes": (_bytes(folder / "nul.csv", ("a,b\n" + many).encode() + b"9,\x00\n"), "NUL"),
        "ragged": (_write(folder / "ragged.csv", "a,b\n1,2\n3,4,5\n6,7\n8\n"), "line 3 (3 fields)"),
        "header only": (_write(folder / "header.csv", "a,b\n"), "no data rows"),
        "mixed encodings": (
            _bytes(folder / "mixed.csv", "a,b\ncafé,1\n".encode() + "thé,2\n".encode("cp1252")),
            "mixes text encodings",
        ),
        "mixed encodings past the head": (
            _bytes(folder / "late_mixed.csv", late_mixed + "9,thé\n".encode("cp1252")),
            "line 80003",
        ),
        "zip of several tables": (
            _zip(folder / "two.zip", {"a.csv": "a\n1\n", "b.csv": "b\n2\n"}),
            "not a single table",
        ),
        "bad parquet": (_bytes(folder / "broken.parquet", b"PAR1" + b"\x01" * 64), "Parquet"),
        "bad json": (_write(folder / "broken.jsonl", '{"a": 1}\n{"a": \n'), "not valid JSONL"),
    }


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def single_line(path: Path, megabytes: int = 33) -> Path:
    """A file whose first line never ends (like a 1 GB single line, but smaller)."""
    with open(path, "wb") as out:
        chunk = b"x," * (1 << 19)
        for _ in range(megabytes):
            out.write(chunk)
    return path


def warnings_table(path: Path, rows: int = 1000, seed: int = 0) -> Path:
    """A binary-target table with one column for every warning kind the planner acts on."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    churned = np.where(x + rng.normal(scale=1.0, size=rows) > 1.3, "yes", "no")
    churned = churned.astype(object)
    churned[:7] = None  # target_missing
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(10_000, 10_000 + rows),  # identifier
            "x": x,
            "plan": rng.choice(["basic", "pro", "team"], size=rows),
            "email": [f"user{i}@example.com" for i in range(rows)],  # identifier (strings)
            "zip_code": [f"Z{v}" for v in rng.integers(0, 400, size=rows)],  # high cardinality
            "country": "FR",  # constant
            "fax": np.where(rng.random(rows) < 0.93, None, "555-0100"),  # heavy missing
            "cancel_reason": np.where(churned == "yes", "moved", None),  # leakage (post-hoc)
            "churned_score": np.where(churned == "yes", 1.0, 0.0)
            + rng.normal(scale=0.01, size=rows),  # leakage (derived)
            "churned": churned,
        }
    )
    frame = pd.concat([frame, frame.iloc[100:104]], ignore_index=True)  # duplicate rows
    frame.to_csv(path, index=False)
    return path


def task_tables(folder: Path, rows: int = 400, seed: int = 0) -> dict[str, tuple[Path, str, str]]:
    """{case: (path, target, expected task)} for every task profiling infers."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    words = np.array(
        ["good", "bad", "great", "awful", "fine", "terrible", "lovely", "poor", "nice", "dull"]
    )
    reviews = [" ".join(rng.choice(words, size=8)) for _ in range(rows)]
    tables = {
        "binary": (pd.DataFrame({"x": x, "label": np.where(x > 0, "a", "b")}), "label", "binary"),
        "multiclass": (
            pd.DataFrame({"x": x, "species": rng.choice(["s", "v", "g"], size=rows)}),
            "species",
            "multiclass",
        ),
        "integer multiclass": (
            pd.DataFrame({"x": x, "quality": rng.integers(3, 9, size=rows)}),
            "quality",
            "multiclass",
        ),
        "regression": (
            pd.DataFrame({"x": x, "price": 3 * x + rng.normal(size=rows) + 100}),
            "price",
            "regression",
        ),
        "forecast": (
            pd.DataFrame(
                {
                    "date": pd.date_range("2021-01-01", periods=rows, freq="D").strftime(
                        "%Y-%m-%d"
                    ),
                    "sales": 50 + 10 * np.sin(np.arange(rows) / 7) + rng.normal(size=rows),
                }
            ),
            "sales",
            "forecast",
        ),
        "text classification": (
            pd.DataFrame(
                {"review": reviews, "sentiment": rng.choice(["pos", "neg", "mixed"], size=rows)}
            ),
            "sentiment",
            "text_classification",
        ),
    }
    out = {}
    for case, (frame, target, task) in tables.items():
        path = folder / f"{case.replace(' ', '_')}.csv"
        frame.to_csv(path, index=False)
        out[case] = (path, target, task)
    return out

"""The bundle's entry point: mltrainer-mcp over stdio, with the bundle's settings applied.

Claude Desktop passes every user_config field as an environment variable, an empty string when
the person left it empty: empty means unset here (an empty MLTRAINER_HOME would otherwise mean
the current directory). The data folder is one path; the server reads a JSON list.
"""

import json
import os

PREFIXES = ("MLTRAINER_", "HF_", "KAGGLE_", "MODAL_")


def apply_bundle_settings(environ: dict[str, str]) -> None:
    for name in [n for n, value in environ.items() if n.startswith(PREFIXES) and not value]:
        del environ[name]
    folder = environ.get("MLTRAINER_DATA_ROOTS")
    if folder and not folder.lstrip().startswith("["):
        environ["MLTRAINER_DATA_ROOTS"] = json.dumps([folder])


if __name__ == "__main__":
    apply_bundle_settings(os.environ)  # type: ignore[arg-type]
    from mltrainer.server.cli import stdio_main

    stdio_main()

"""One contestant on one dataset, in this process: ``python -m bench.automl.run_one ...``.

Writes a JSON record (status, scores, fit time, this process's peak RSS) to ``--out``. The
parent (``bench.automl.run``) starts one of these per contestant so memory is measured apart.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import traceback
from pathlib import Path


def _portable(text: str) -> str:
    """A traceback without this machine's paths: files under site-packages and the repository
    are named from there (records are committed)."""
    import site

    for root in [*site.getsitepackages(), str(Path(__file__).resolve().parents[2])]:
        text = text.replace(root.rstrip("/") + "/", "")
    return text


def peak_rss_mb() -> float:
    """This process's high-water RSS (VmHWM), with its waited-for children's, in MB."""
    peak_kb = 0.0
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak_kb = float(line.split()[1])
    except OSError:
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(peak_kb, children_kb) / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--contestant", required=True)
    parser.add_argument("--budget", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    from bench.automl.contestants import CONTESTANTS, Run, Skipped
    from bench.automl.datasets import load_split
    from bench.automl.scoring import score

    record: dict = {"dataset": args.dataset, "contestant": args.contestant, "budget_s": args.budget}
    split = load_split(args.dataset)
    record.update(n_train=len(split.X_train), n_test=len(split.X_test), task=split.spec.task)
    started = time.perf_counter()
    try:
        predictions = CONTESTANTS[args.contestant](Run(split, args.budget, args.seed))
        record["fit_s"] = round(time.perf_counter() - started, 2)
        record["scores"] = score(
            split.spec.task, split.y_test, predictions, split.spec.positive_class
        )
        record["status"] = "ok"
        if predictions.notes:
            record["notes"] = predictions.notes
    except Skipped as exc:
        record.update(status="skipped", message=str(exc))
    except Exception as exc:
        record.update(
            status="error",
            message=f"{type(exc).__name__}: {exc}",
            traceback=_portable(traceback.format_exc()[-4000:]),
            fit_s=round(time.perf_counter() - started, 2),
        )
    record["child_peak_mb"] = round(peak_rss_mb(), 1)
    args.out.write_text(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

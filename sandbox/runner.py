"""The interpreter that runs inside the sandbox (standard library only; started as a script).

``python runner.py NONCE`` reads one JSON request per line from stdin: ``{"code": ..., "call": n}``.
Each request runs in one namespace that persists between requests, like a notebook kernel;
the value of a final expression is printed. The code's output goes straight to fds 1 and 2.
When a request is done, the runner flushes, saves any open matplotlib figures as PNG and
writes a marker line to both streams -- ``\\0MLT<nonce>`` + JSON + newline -- so the host
knows that everything before it belongs to this request. The JSON on stderr carries the
status. EOF on stdin ends the interpreter at once, even in the middle of a call: the host
closes stdin only when it is gone (a server that died or was killed leaves no one to read the
result), so the sandbox must not run on until its own timeout. A thread waits for it.
"""

import ast
import builtins
import json
import os
import queue
import signal
import sys
import threading
import warnings

FIGURES_DIR = os.path.join(".mltrainer", "figures")


def main() -> None:
    nonce = sys.argv[1]
    seed_matplotlib_cache()
    # Private copies of the pipes: the user's code may read stdin or close fds 1 and 2, and
    # neither may break the protocol.
    control_in = os.fdopen(os.dup(0), "r", encoding="utf-8")
    out_fd, err_fd = os.dup(1), os.dup(2)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    runner_pid = os.getpid()
    # Python 3.12+ warns on fork() in a threaded process; the only other thread is ours and
    # a forked child never touches it.
    warnings.filterwarnings("ignore", message=".*multi-threaded.*fork", category=DeprecationWarning)
    requests = queue.Queue()  # type: queue.Queue[str]
    threading.Thread(target=read_requests, args=(control_in, requests), daemon=True).start()
    while True:
        line = requests.get()
        request = json.loads(line)
        reply = run_cell(request["code"], namespace)
        if os.getpid() != runner_pid:
            os._exit(0)  # a child forked by the cell must not come back into this loop
        reply["figures"] = save_figures(request.get("call", 0), request.get("max_figures", 8))
        for stream in (sys.stdout, sys.stderr):
            try:  # noqa: SIM105 - the runner keeps its imports minimal
                stream.flush()
            except (OSError, ValueError):
                pass
        marker = b"\0MLT" + nonce.encode()
        os.write(out_fd, marker + b"{}\n")
        os.write(err_fd, marker + json.dumps(reply).encode() + b"\n")


def read_requests(control_in, requests):
    try:
        for line in control_in:
            requests.put(line)
    except (OSError, ValueError):
        pass
    # EOF: the host is gone or stopped this sandbox. Under bubblewrap and Docker the runner
    # is the sandbox's main process, so its exit ends every process in it; on the unisolated
    # process backend its process group is all we can reach.
    if hasattr(os, "killpg") and os.getpgid(0) == os.getpid():
        os.killpg(0, signal.SIGKILL)
    os._exit(0)


def seed_matplotlib_cache():
    """Copy the host's prepared font list into this sandbox's (empty) matplotlib config dir."""
    source, target = os.environ.get("MLTRAINER_MPLCACHE"), os.environ.get("MPLCONFIGDIR")
    if not source or not target or not os.path.isdir(source):
        return
    try:
        os.makedirs(target, exist_ok=True)
        for name in os.listdir(source):
            if name.startswith("fontlist-") and name.endswith(".json"):
                with open(os.path.join(source, name), "rb") as src:
                    data = src.read()
                with open(os.path.join(target, name), "wb") as dst:
                    dst.write(data)
    except OSError:
        pass  # matplotlib builds its own cache then: slower, not broken


def run_cell(code, namespace):
    try:
        tree = ast.parse(code, filename="<cell>", mode="exec")
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        exec(compile(tree, "<cell>", "exec"), namespace)
        if last is not None:
            value = eval(compile(last, "<cell>", "eval"), namespace)
            if value is not None:
                print(repr(value))
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return {"status": "ok", "exit_code": 0}
        if isinstance(code, int):
            return {"status": "ok" if code == 0 else "error", "exit_code": code}
        print(code, file=sys.stderr)
        return {"status": "error", "exit_code": 1}
    except BaseException:
        print_user_traceback()
        return {"status": "error", "exit_code": 1}
    return {"status": "ok", "exit_code": 0}


def print_user_traceback():
    import traceback

    kind, value, tb = sys.exc_info()
    # Drop the runner's own frames: the caller only cares about its cell.
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    traceback.print_exception(kind, value, tb)


def save_figures(call, limit):
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is None:
        return []
    saved = []
    try:
        numbers = pyplot.get_fignums()
        if numbers:
            os.makedirs(FIGURES_DIR, exist_ok=True)
        for index, number in enumerate(numbers[:limit]):
            path = os.path.join(FIGURES_DIR, f"call{call}-fig{index + 1}.png")
            pyplot.figure(number).savefig(path, format="png", dpi=100)
            saved.append(path)
        pyplot.close("all")
    except Exception as exc:
        print(f"[mltrainer] could not save figures: {exc!r}", file=sys.stderr)
    return saved


if __name__ == "__main__":
    main()

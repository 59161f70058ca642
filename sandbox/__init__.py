"""Sandboxed code execution: Docker, then bubblewrap, never a silent downgrade.

``sandbox.manager.create_manager(settings, masker, store)`` builds the ``SandboxManager`` the
server keeps in its lifespan context. The parts, top down:

- ``manager``: runs code (``run``, ``start_job`` for long runs), sessions, ``close()``.
- ``selection``: which backend runs here, and what to do when none can.
- ``sessions``, ``codejobs``, ``runs``: named interpreters; long runs as 'code' jobs; the
  result of a call, its row in the runs table and its next step.
- ``calls``: a call in flight and what stops it (``StopSignal``, ``InFlight``).
- ``kernel``: one sandboxed interpreter and its protocol; ``spawn`` starts it.
- ``backends`` (bubblewrap, the unisolated opt-in), ``containers`` (Docker), ``limits``,
  ``seccomp``, ``paths``, ``mplcache``; ``owner``: which server a sandbox belongs to.
- ``runner.py``: the interpreter that runs inside each sandbox (standard library only).
"""

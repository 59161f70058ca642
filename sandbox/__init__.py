"""Sandboxed code execution: Docker, then bubblewrap, never a silent downgrade.

``sandbox.manager.create_manager(settings, masker, store)`` builds the ``SandboxManager`` the
server keeps in its lifespan context; ``sandbox/runner.py`` is the interpreter that runs
inside each sandbox.
"""

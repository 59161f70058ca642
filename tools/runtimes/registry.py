"""The runtime for a name: ``local``, ``modal`` or ``kaggle``, with its credentials checked.

A remote runtime's ``connect(settings, vault)`` resolves its credential through the vault at
once: a runtime without credentials is refused with the secret's name and how to set it,
before anything is prepared.
"""

from __future__ import annotations

from mltrainer.sandbox.manager import SandboxManager
from mltrainer.state.errors import InvalidInput
from mltrainer.state.secrets import SecretVault
from mltrainer.state.settings import Settings
from mltrainer.tools.runtimes.base import Runtime

RUNTIMES = ("local", "modal", "kaggle")


def runtime_for(
    name: str, settings: Settings, vault: SecretVault, *, sandbox: SandboxManager | None = None
) -> Runtime:
    if name == "local":
        from mltrainer.tools.runtimes.local import LocalRuntime

        return LocalRuntime(settings, sandbox)
    if name == "modal":
        from mltrainer.tools.runtimes.modal import ModalRuntime

        return ModalRuntime.connect(settings, vault)
    if name == "kaggle":
        from mltrainer.tools.runtimes.kaggle import KaggleRuntime

        return KaggleRuntime.connect(settings, vault)
    raise InvalidInput(
        f"Unknown runtime {name!r}.", next_step=f"Use one of: {', '.join(RUNTIMES)}."
    )

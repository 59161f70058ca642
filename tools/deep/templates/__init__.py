"""The training scripts, one per task family, shipped as they are (package data, not code
that runs in the server). ``deep_infer`` is also imported by ``mltrainer.tools.deep.predict``."""

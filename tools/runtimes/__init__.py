"""Where training runs: this machine, Modal, Kaggle kernels — behind one interface (base.py)."""

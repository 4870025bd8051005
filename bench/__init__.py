"""Load benchmarks: ``cfx bench ...`` or ``python -m bench.<name>``."""

"""``python -m experiments``: the ``cfx experiment`` commands without the cfx CLI."""

from experiments.cli import app

app(prog_name="cfx experiment")

"""``python -m cli``: the ``jiazheng`` command where the project is not installed (the service
image, which holds the CLI but no console script)."""

from cli.main import app

app(prog_name="jiazheng")

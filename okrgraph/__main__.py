"""`python -m okrgraph` is `okr` (how `okr dev` starts its children)."""

from okrgraph.cli import app

app(prog_name="okr")

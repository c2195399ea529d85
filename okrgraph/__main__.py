"""`python -m okrgraph` is `okr` (how `okr dev` starts its children)."""

from okrgraph.cli import main

main()

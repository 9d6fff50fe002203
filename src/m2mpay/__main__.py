"""`python -m m2mpay …` is the `m2mpay` command (for processes started without the entry point)."""

from m2mpay.cli import main

main()

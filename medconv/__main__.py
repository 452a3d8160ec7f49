"""``python -m medconv`` runs the command line."""

from .cli.main import main

main()

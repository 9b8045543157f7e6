"""``python -m dictlab`` (and ``torchrun ... -m dictlab``): the command line."""

from dictlab.cli.main import main

main()

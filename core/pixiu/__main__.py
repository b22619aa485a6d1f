"""`python -m pixiu`: the same command line as the `pixiu` script."""

from pixiu.cli import main

main()

"""``python -m cityhub``: the command line, as the ``cityhub`` script runs it."""

from cityhub.cli import main

if __name__ == "__main__":
    main()

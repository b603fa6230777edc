"""`python -m lab`: the `lab` command, by the interpreter at hand; how `lab bisect git` has `git bisect run` call
`lab bisect-step` whatever the PATH of the repository's shell."""
from .cli import main

if __name__ == "__main__":
    main()

"""One error type whose message always names the problem and the fix."""


class SuperalignError(Exception):
    """A user-facing error: `problem` says what went wrong, `fix` what to do about it."""

    def __init__(self, problem: str, fix: str = ""):
        self.problem, self.fix = problem, fix
        super().__init__(f"{problem}" + (f"\n  fix: {fix}" if fix else ""))

"""The compiler's error hierarchy.

Every error a user can provoke derives from `CompilerError`; the CLI prints its message as one
`error: ...` line and exits 1. `assert` is reserved for internal invariants.
"""


def brief(value: object, limit: int = 80) -> str:
    """`repr(value)` cut to `limit` characters: error lines quote untrusted values."""
    try:
        text = repr(value)
    except RecursionError:
        text = f"<deeply nested {type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 5] + " ...>"


def printable(text: str) -> str:
    """`text` on one line: control characters (newlines, terminal escapes) spelled out."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class CompilerError(Exception):
    """Base of all user-facing errors.

    `HAS_DETAIL` errors carry a multi-line message: a headline, then indented context (an IR
    neighbourhood); the CLI prints the headline and shows the rest with --debug.
    """

    HAS_DETAIL = False

    def headline(self) -> str:
        text = str(self)
        return text.split("\n", 1)[0] if self.HAS_DETAIL else text


class FrontendError(CompilerError):
    """A model description (preset, config.json, GGUF) cannot be read or is unsupported."""


class ConfigError(CompilerError):
    """A TOML configuration is malformed or holds an invalid key or value."""


class IRVerificationError(CompilerError):
    """The IR violates a structural or per-op invariant."""

    HAS_DETAIL = True


class PassError(CompilerError):
    """A pass failed; the message names the pass and the passes that ran before it."""

    HAS_DETAIL = True

    def __init__(self, pass_name: str, ran_before: list[str], cause: Exception):
        self.pass_name = pass_name
        self.ran_before = list(ran_before)
        self.cause = cause
        before = ", ".join(ran_before) if ran_before else "nothing"
        super().__init__(f"pass '{pass_name}' failed (after {before}): {cause}")


class SimulationError(CompilerError):
    """Simulation inputs are invalid (wrong keys, shapes, non-finite values)."""


class CodegenError(CompilerError):
    """HLS project emission failed."""


class OutputError(CompilerError):
    """An output path cannot be written (missing, read-only, full, not a directory, ...)."""


class InputError(CompilerError):
    """An input file is not a readable regular file of bounded size, or cannot be parsed."""

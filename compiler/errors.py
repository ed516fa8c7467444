"""The compiler's error hierarchy.

Every error a user can provoke derives from `CompilerError`; the CLI prints its message as one
`error: ...` line and exits 1. `assert` is reserved for internal invariants.
"""


class CompilerError(Exception):
    """Base of all user-facing errors."""


class FrontendError(CompilerError):
    """A model description (preset, config.json, GGUF) cannot be read or is unsupported."""


class ConfigError(CompilerError):
    """A TOML configuration is malformed or holds an invalid key or value."""


class IRVerificationError(CompilerError):
    """The IR violates a structural or per-op invariant."""


class PassError(CompilerError):
    """A pass failed; the message names the pass and the passes that ran before it."""

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

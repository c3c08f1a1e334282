"""The error types every room raises; the CLI turns them into a one-line message and an exit code."""


class TorchzooError(Exception):
    """An expected failure with a message meant for a person. Exit code 1 (internal/check failure)."""

    exit_code = 1


class UserInputError(TorchzooError):
    """Bad input from the user: unknown model, unreadable file, a name with no letters... Exit code 2."""

    exit_code = 2


class DataNotFoundError(UserInputError):
    """A dataset is missing from every data root that was searched."""


class ArtifactError(UserInputError):
    """An artifact directory is missing, incomplete, or fails its integrity checks."""


class OutputError(ArtifactError):
    """The graph's output is not an answer (NaN/infinity, a probability outside [0, 1], a wrong width). Exit 2:
    the artifact is at fault, not the input."""


class SignatureError(ArtifactError):
    """An artifact's signature is missing, does not match, or cannot be checked here. Exit 2."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """``Type: first line of the message``, for one-line reports of an exception raised by a library."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:limit].rstrip(": ")

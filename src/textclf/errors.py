"""Error types the stage scripts turn into one clear line and a non-zero exit (no traceback)."""

from textclf.config import ParamsError


class TextclfError(Exception):
    """Base for expected, user-facing failures (bad input, missing file, bad download)."""


class DataError(TextclfError):
    """Input data is malformed, empty or inconsistent."""


class DownloadError(TextclfError):
    """A file could not be fetched (network, missing mirror file, truncated transfer)."""


class ChecksumError(DownloadError):
    """A fetched file's sha256 differs from the expected one."""


USER_ERRORS = (TextclfError, ParamsError, FileNotFoundError)

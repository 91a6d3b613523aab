"""Errors a user can cause (bad input, missing asset). The CLI prints them as one line, no traceback."""


class DfmError(Exception):
    """A problem the user can fix; its message is one line that names the problem."""


class InputError(DfmError):
    """The input file or argument is unusable (missing, not a video, truncated, no face...)."""


class AssetError(DfmError):
    """A model file is missing or corrupt."""


class Cancelled(DfmError):
    """The user cancelled a running job (the job runner's cancel check said so between frames)."""


class DfmWarning(UserWarning):
    """Something the user should know, that DFM handled (the CLI prints it as one `dfm: warning:` line)."""


class CacheWarning(DfmWarning):
    """A cache entry was unreadable and is being rebuilt."""

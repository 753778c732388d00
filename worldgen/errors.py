"""The one exception type users see: every bad input raises a subclass of `WorldgenError`."""


class WorldgenError(ValueError):
    """A problem with user input (a parameter, a file, a folder) described in plain words."""


class SpecError(WorldgenError):
    """A `WorldSpec` field is out of range or of the wrong kind."""


class DataError(WorldgenError):
    """A dataset file or folder is missing, corrupt, foreign, or of another format version."""


def brief(error: Exception, limit: int = 200) -> str:
    """`Type: first line` of an exception, for one-line messages (orbax and TensorStore write pages)."""
    return f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0][:limit]}"

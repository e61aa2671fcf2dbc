"""The single error type of the KQL compiler."""


class KqlError(Exception):
    """Unsupported or invalid KQL.

    The message names the operator, function or column at fault and its position: the
    0-based character offset in the query text, also kept in ``position`` so a server can
    point at it.
    """

    def __init__(self, message: str, position: int | None = None) -> None:
        text = message if position is None else f"{message} at position {position}"
        super().__init__(text)
        self.position = position

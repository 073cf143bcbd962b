"""The one kind of error an action raises when it cannot be done as asked.

Its message is Chinese and complete: whoever asked (a staff member's button or command, the CLI, the
web desk) shows it as it is. The subclasses say why, for callers that answer differently (an alert
rather than a line, HTTP 404 rather than 409).
"""

from __future__ import annotations


class ActionError(ValueError):
    """Refused: the ticket, notice or unit is not in a state that allows it, or the input is wrong."""


class NotFound(ActionError):
    """No such ticket, staff member, notice or unit where the actor may look."""


class NotAllowed(ActionError):
    """The actor may not do this: another compound's ticket, a claim by someone not on staff."""

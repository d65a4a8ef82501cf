"""The two errors a user can be shown. Services raise them; `core.ui.handler` turns them into a
gr.Error whose message is exactly the text here, so every message must say what to change.

- `InputError`: the request itself is wrong (a field's type, an unknown choice, a blank prompt, a
  file that is not an image). Raised by `core.validate`; the message names the field.
- `Unavailable`: the request is fine but something it needs is not on this machine (a data set, a
  checkpoint, an optional package). The message says what to install or run.

Anything else that escapes a service is a bug, and is left to surface as one.
"""
from __future__ import annotations


class PlaygroundError(Exception):
    """An error whose message is meant for the user."""


class InputError(PlaygroundError, ValueError):
    """A request field is wrong; the message names the field and what to send instead."""


class Unavailable(PlaygroundError):
    """Something the request needs is missing here; the message says how to get it."""

"""The one exception type that reaches users.

Everything the user can fix (a bad file, bad labels, missing weights) is raised as
`MerClipError` with a single readable line; the CLI turns it into exit status 2 and
the app into a message on the page. Anything else is a bug and keeps its traceback.
"""


class MerClipError(Exception):
    """A problem with the user's input or setup, described in one line."""

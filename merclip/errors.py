"""The one exception type that reaches users.

Everything the user can fix (a bad file, bad labels, missing weights) is raised as
`MerClipError` with a single readable line; the CLI turns it into exit status 2 and
the app into a message on the page. Anything else is a bug and keeps its traceback.
"""


class MerClipError(Exception):
    """A problem with the user's input or setup, described in one line.

    Messages quote file names and labels that strangers choose; control characters in
    them (a newline in a file name, a terminal escape) are shown escaped, so the
    message stays one line and cannot rewrite a terminal.
    """

    def __str__(self) -> str:
        return printable(super().__str__())


class LabelError(MerClipError):
    """Labels or templates that cannot be scored: the page shows it by the labels box and keeps the figures."""


def printable(text: str) -> str:
    """`text` with every non-printable character written as its escape (`\\n`, `\\x1b`)."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def first_line(exc: BaseException) -> str:
    """A library's exception as the reason inside one of our one-line messages (at most 300 characters)."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]

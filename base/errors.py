"""User-facing errors: the CLI prints these as one line, without a traceback."""


class ShelfwiseError(Exception):
    """An expected failure whose message alone tells the user what was wrong and where."""


class BadInputError(ShelfwiseError):
    """A raw file that cannot be loaded as it is."""


class InvalidArgument(ShelfwiseError, ValueError):
    """An argument no run could use (a hyper-parameter, a generator size); the message names it."""


class ParamError(InvalidArgument):
    """A hyper-parameter value a model cannot use; the message names the parameter."""

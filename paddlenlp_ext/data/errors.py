"""Errors for bad input data. Each message names the file and, where there is one, the example."""


class DataFormatError(ValueError):
    """A data file, record, feature array or vocabulary is malformed or empty."""


class MissingFeatureError(FileNotFoundError):
    """The region feature file an example needs does not exist."""

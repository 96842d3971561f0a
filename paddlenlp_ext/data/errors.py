"""Errors for bad input data. Each message names the file and, where there is one, the example."""


class DataFormatError(ValueError):
    """A data file, record, feature array or vocabulary is malformed or empty."""


class MissingFeatureError(FileNotFoundError):
    """The region feature file an example needs does not exist."""


# The key of an example, and of a batch, that carries a data error out of a DataLoader worker (see TaskDataset).
DATA_ERROR = "data_error"

from .configuration import *  # noqa: F401,F403
from .modeling import *  # noqa: F401,F403

"""The one error type of the space: a config that cannot be built."""


class ConfigError(ValueError):
    """Raised when a config is invalid; the message names the field and what is allowed.

    Example::

        >>> SynthesisConfig(window=7)
        ConfigError: synthesis.window: 7 is not allowed; choose one of [2, 4, 8, 16, 32]
    """

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field

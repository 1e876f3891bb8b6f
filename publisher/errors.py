"""Every error the publisher raises on purpose.

The tree::

    PublisherError                 something went wrong in the publisher
     ├── InvalidInput              bad input from a user: nothing was changed
     │    └── ContentNotAccepted   an item a channel cannot take, found at review time
     ├── NotFound                  no such item, user, delivery...
     ├── NotAllowed                this user may not do this now
     ├── StorageFull               the disk holding the store or its media is full
     ├── ConfigError               settings.toml or the environment is wrong
     │    └── MissingSecret        a channel's secret variable is not set (raised where it is used)
     └── ChannelError              a channel failed (see publisher.channel)
          ├── TransientChannelError
          ├── PermanentChannelError
          ├── QuotaExceeded
          └── AmbiguousOutcome

The first line of each class docstring is its default message. A message says what is wrong and,
where it can, how to fix it: the CLI prints it as the one line a user sees.
"""

from __future__ import annotations


class PublisherError(Exception):
    """Something went wrong in the publisher."""

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__doc__ or self.__class__.__name__).strip().splitlines()[0]
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class InvalidInput(PublisherError):
    """Invalid input: nothing was changed."""


class ContentNotAccepted(InvalidInput):
    """A target channel cannot take this item as it is."""

    def __init__(self, message: str | None = None, *, channel: str = "", problems: list[str] | None = None):
        self.channel = channel
        self.problems = list(problems or [])
        if message is None and self.problems:
            message = f"channel {channel!r} cannot take this item: " + "; ".join(self.problems)
        super().__init__(message)


class NotFound(PublisherError):
    """Not found."""


class NotAllowed(PublisherError):
    """Not allowed."""


class StorageFull(PublisherError):
    """The disk is full: free space, then try again; nothing was changed."""


class ConfigError(PublisherError):
    """The settings are invalid."""


class MissingSecret(ConfigError):
    """A channel's secret is not in the environment."""

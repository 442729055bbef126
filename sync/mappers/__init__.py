"""Pure mapping between Bitrix24 and Xero payloads: no I/O, no database, no clock.

Each module takes the JSON the APIs return (already fetched by the caller) and returns the JSON the
other side takes, so every rule here is tested on realistic fixtures without a server.
"""

from __future__ import annotations


class MappingError(ValueError):
    """The data cannot be mapped as it is (e.g. a tax rate with no Xero tax type).

    The message is shown to the user as is: it names the record and what to change. Retrying the
    same data cannot succeed, so the engine treats it as a permanent failure.
    """

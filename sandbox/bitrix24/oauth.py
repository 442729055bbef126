"""Placeholder: replaced by the module's real implementation."""


def register(bp, sandbox) -> None:
    pass

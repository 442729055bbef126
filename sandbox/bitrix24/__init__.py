"""The fake Bitrix24: a portal's REST API, its OAuth server, outbound events, the app frame."""

from flask import Blueprint

from sandbox.bitrix24.world import Bitrix24World

__all__ = ["Bitrix24World", "create_blueprint"]


def create_blueprint(sandbox) -> Blueprint:
    from sandbox.bitrix24 import control, oauth, rest

    bp = Blueprint("bitrix24", __name__)
    for module in (rest, oauth, control):
        module.register(bp, sandbox)
    return bp

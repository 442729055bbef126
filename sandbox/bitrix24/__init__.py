"""Placeholder world until the fake is written; replaced by the real one."""

from flask import Blueprint, jsonify


class Bitrix24World:
    def __init__(self, sandbox):
        self.sandbox = sandbox

    def reset(self):
        pass

    def snapshot(self):
        return {}

    def limits_changed(self):
        pass

    def fault_response(self, fault):
        return jsonify({"error": "fault"}), fault.status


def create_blueprint(sandbox):
    return Blueprint("bitrix24", __name__)

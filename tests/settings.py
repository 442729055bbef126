"""Settings of the test suite: the project's settings in development mode, said explicitly.

DEBUG defaults to off (production), which refuses to start without real keys and serves HTTPS
only. The suite runs plain-HTTP live servers on development keys, so it turns DEBUG on here, before
connector.settings reads it; the worker and sandbox processes it starts inherit the environment.
Django's test runner still runs each test with settings.DEBUG = False.
"""

import os

os.environ["DEBUG"] = "1"

from connector.settings import *  # noqa: E402,F403

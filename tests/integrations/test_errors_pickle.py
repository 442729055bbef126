"""API errors survive pickling (Celery pickles exceptions that escape a task)."""

from __future__ import annotations

import pickle

import pytest

from integrations.common.errors import AuthorizationLostError, PermanentError, RateLimitedError, RetryableError


@pytest.mark.parametrize("cls", [RetryableError, RateLimitedError, PermanentError, AuthorizationLostError])
def test_an_api_error_round_trips_through_pickle_with_every_field(cls):
    error = cls(
        "Xero said no",
        system="xero",
        status=429,
        code="rate",
        retry_after=7.0,
        details=["one"],
        payload={"Elements": []},
    )
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is cls
    assert (again.message, again.system, again.status, again.code, again.retry_after, again.details, again.payload) == (
        "Xero said no",
        "xero",
        429,
        "rate",
        7.0,
        ["one"],
        {"Elements": []},
    )
    assert str(again) == str(error) and again.retryable is error.retryable

"""Django admin's login is rate-limited against password guessing (issue 8, point 7; django-axes)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.test import Client


def test_after_five_wrong_passwords_even_the_right_one_is_refused(db):
    User.objects.create_superuser("operator", "op@example.com", "the-right-password-123")
    client = Client(raise_request_exception=False)
    for _ in range(5):
        wrong = client.post("/admin/login/", {"username": "operator", "password": "guess", "next": "/admin/"})
        assert wrong.status_code in (200, 429)
    locked = client.post(
        "/admin/login/", {"username": "operator", "password": "the-right-password-123", "next": "/admin/"}
    )
    assert locked.status_code == 429
    assert client.get("/admin/").status_code == 302  # still not signed in


def test_the_right_password_works_before_the_limit(db):
    User.objects.create_superuser("operator", "op@example.com", "the-right-password-123")
    client = Client()
    client.post("/admin/login/", {"username": "operator", "password": "guess", "next": "/admin/"})
    ok = client.post("/admin/login/", {"username": "operator", "password": "the-right-password-123", "next": "/admin/"})
    assert ok.status_code == 302 and client.get("/admin/").status_code == 200

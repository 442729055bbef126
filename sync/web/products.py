"""Placeholder: the module's author replaces it (it must keep a `urlpatterns` list)."""

urlpatterns: list = []

"""What the DRF serializers of the inbound endpoints share.

DRF builds a serializer's fields anew for every instance, by deep-copying the declared ones, so that
a view may change them per request. The webhook serializers never do, and deep-copying their
fields was more than half of what validating a Bitrix24 event cost (profiled: ~300 of ~550 µs per
event on a loaded 2-core machine). `FieldsBuiltOnce` builds them once per serializer class.

That is safe only for fields that keep no per-request state: plain value fields, and nested
serializers that are themselves FieldsBuiltOnce. Validation reads a field's settings and returns
values or raises; errors go to the serializer instance, never to its fields. Not for
ModelSerializers, fields whose defaults read the context (CurrentUserDefault), or views that
alter `serializer.fields`.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class FieldsBuiltOnce(serializers.Serializer):
    """A Serializer whose bound fields are built on first use and shared by every later instance."""

    @property
    def fields(self) -> Any:  # type: ignore[override]  # DRF declares a cached_property
        cls = type(self)
        built = cls.__dict__.get("_fields_built_once")
        if built is None:
            built = serializers.Serializer.fields.func(self)  # type: ignore[attr-defined]
            cls._fields_built_once = built
        return built

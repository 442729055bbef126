"""Add New Product (/app/products/new/): one form creates the Bitrix24 product and the Xero item.

The view only validates the form and hands it to sync.services.products, which owns the order of
the two writes and the clean-up when the second one fails.
"""

from __future__ import annotations

import secrets
from decimal import Decimal

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, path, reverse
from django.utils.translation import gettext_lazy as _

from accounts.auth import frame_login_required
from accounts.services.frame import frame_session_bitrix24_client
from sync.services.products import (
    ProductFormOptions,
    ProductNotCreated,
    product_create_in_both,
    product_form_options,
    xero_connection_for,
)

# U2's endpoint; the fallback keeps the page rendering while that route is not mounted yet.
SUGGEST_URL_FALLBACK = "/app/xero/accounts/suggest/"


def _field(widget_class, test_id: str, **attrs):
    return widget_class(attrs={"data-test": test_id, **attrs})


class ProductForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=50,  # Xero's Item Name limit; Bitrix24 takes longer, both get the same name
        widget=_field(forms.TextInput, "field-name", autocomplete="off"),
    )
    price = forms.DecimalField(
        label=_("Price"),
        min_value=Decimal(0),
        max_digits=15,
        decimal_places=2,
        widget=_field(forms.NumberInput, "field-price", step="0.01", min="0", inputmode="decimal"),
    )
    currency = forms.ChoiceField(widget=_field(forms.Select, "field-currency"))
    section_id = forms.ChoiceField(
        required=False,
        label=_("Bitrix24 section"),
        help_text=_("Where the product goes in the Bitrix24 catalog."),
        widget=_field(forms.Select, "field-section"),
    )
    code = forms.CharField(
        max_length=30,
        label=_("Xero item code"),
        help_text=_("Unique in Xero, up to 30 characters. Suggested from the name."),
        widget=_field(forms.TextInput, "field-code", autocomplete="off", maxlength="30"),
    )
    account_code = forms.CharField(
        max_length=10,
        label=_("Sales account"),
        help_text=_("Type a code or a name, e.g. 200 or Sales."),
        widget=_field(
            forms.TextInput,
            "field-account",
            autocomplete="off",
            role="combobox",
            **{"aria-autocomplete": "list", "aria-expanded": "false", "aria-controls": "account-suggestions"},
        ),
    )
    tax_type = forms.ChoiceField(label=_("Tax rate"), widget=_field(forms.Select, "field-tax-type"))
    description = forms.CharField(
        label=_("Description"),
        required=False,
        max_length=4000,
        widget=_field(forms.Textarea, "field-description", rows="3"),
    )
    nonce = forms.CharField(widget=forms.HiddenInput(attrs={"data-test": "field-nonce"}))

    def __init__(self, *args, options: ProductFormOptions, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["currency"].choices = options.currencies
        self.fields["section_id"].choices = [("", _("— Top level of the catalog —")), *options.sections]
        self.fields["tax_type"].choices = [("", _("— Choose a tax rate —")), *options.tax_types]

    def clean_code(self) -> str:
        return self.cleaned_data["code"].strip()

    def clean_account_code(self) -> str:
        return self.cleaned_data["account_code"].strip()


@frame_login_required
def product_new(request: HttpRequest) -> HttpResponse:
    portal = request.portal
    context = {"suggest_url": _suggest_url(), "is_admin": request.frame_user.is_admin}
    if xero_connection_for(portal) is None:
        return render(request, "sync/product_new.html", {**context, "not_connected": True})

    client = frame_session_bitrix24_client(session=request.frame_user)
    options = product_form_options(portal=portal, client=client)
    context["options"] = options
    if request.method != "POST":
        form = ProductForm(options=options, initial={"currency": options.base_currency, "nonce": _nonce()})
        return render(request, "sync/product_new.html", {**context, "form": form})

    form = ProductForm(request.POST, options=options)
    if not form.is_valid():
        return render(request, "sync/product_new.html", {**context, "form": form}, status=400)
    try:
        created = product_create_in_both(portal=portal, client=client, form_data=form.cleaned_data)
    except ProductNotCreated as refusal:
        data = request.POST.copy()
        if not refusal.retry_same_form:
            data["nonce"] = _nonce()  # a fresh form: the old one has had its definitive answer
        form = ProductForm(data, options=options)
        form.is_valid()
        return render(request, "sync/product_new.html", {**context, "form": form, "refusal": refusal}, status=422)
    return render(request, "sync/product_new.html", {**context, "created": created})


def _nonce() -> str:
    return secrets.token_urlsafe(12)


def _suggest_url() -> str:
    try:
        return reverse("web:accounts_suggest")
    except NoReverseMatch:
        return SUGGEST_URL_FALLBACK


urlpatterns = [path("products/new/", product_new, name="product_new")]

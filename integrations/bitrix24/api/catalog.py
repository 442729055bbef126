"""The product catalog, its prices and VAT rates, and the CRM's currencies (api-reference/catalog/,
crm/currency/). Product and price `fields` are the catalog's camelCase fields as the mappers build
them (sync.mappers.contact.xero_item_to_product); answers come back as dataclasses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from integrations.bitrix24.api.command import (
    Command,
    ListCommand,
    as_decimal,
    as_int,
    as_str,
    list_command,
    ref,
    rows_of,
)

SYSTEM = "bitrix24"


@dataclass(frozen=True)
class Catalog:
    id: int
    iblock_id: int
    iblock_type_id: str
    product_iblock_id: int | None  # set on an SKU (offers) catalog: the products' own iblock

    @property
    def products_iblock(self) -> int:
        return self.iblock_id or self.id


@dataclass(frozen=True)
class PriceType:
    id: int
    base: bool


@dataclass(frozen=True)
class Section:
    id: int
    name: str
    parent_id: int | None


@dataclass(frozen=True)
class ProductRef:
    id: int
    iblock_id: int | None
    xml_id: str


@dataclass(frozen=True)
class Price:
    id: int
    product_id: int | None
    price_type: int | None


@dataclass(frozen=True)
class Vat:
    id: int
    name: str
    rate: Decimal | None  # percent; None: the "without VAT" entry


@dataclass(frozen=True)
class Currency:
    code: str
    name: str
    base: bool
    amount: Decimal | None  # units of the portal's base currency per `amount_cnt` of this one
    amount_cnt: Decimal | None


def _wrapped(result: Any, key: str) -> list[dict[str, Any]]:
    rows = result.get(key) if isinstance(result, dict) else result
    return [r for r in rows or [] if isinstance(r, dict)] if isinstance(rows, list) else []


def _catalog(row: dict[str, Any]) -> Catalog:
    return Catalog(
        id=as_int(row.get("id")) or 0,
        iblock_id=as_int(row.get("iblockId")) or 0,
        iblock_type_id=as_str(row.get("iblockTypeId")),
        product_iblock_id=as_int(row.get("productIblockId")) or None,
    )


def catalogs_list() -> Command[list[Catalog]]:
    def parse(result: Any) -> list[Catalog]:
        return [_catalog(r) for r in _wrapped(result, "catalogs")]

    return Command("catalog.catalog.list", {"select": ["id", "iblockId", "iblockTypeId", "productIblockId"]}, parse)


def price_types_base() -> Command[list[PriceType]]:
    """The base price type(s) (catalog.priceType.list filtered on base=Y)."""

    def parse(result: Any) -> list[PriceType]:
        return [
            PriceType(id=as_int(r.get("id")) or 0, base=as_str(r.get("base")) == "Y")
            for r in _wrapped(result, "priceTypes")
        ]

    return Command("catalog.priceType.list", {"select": ["id", "base"], "filter": {"base": "Y"}}, parse)


def _section(row: dict[str, Any]) -> Section:
    return Section(
        id=as_int(row.get("id")) or 0,
        name=as_str(row.get("name")),
        parent_id=as_int(row.get("iblockSectionId")) or None,
    )


def sections_list(iblock_id: int) -> ListCommand[Section]:
    return list_command(
        "catalog.section.list",
        {"select": ["id", "name", "iblockSectionId"], "filter": {"iblockId": iblock_id}, "order": {"name": "ASC"}},
        _section,
        list_key="sections",
        id_field="id",
    )


def _product_ref(row: dict[str, Any]) -> ProductRef:
    return ProductRef(
        id=as_int(row.get("id")) or 0, iblock_id=as_int(row.get("iblockId")), xml_id=as_str(row.get("xmlId"))
    )


def products_by_xml_id(iblock_id: int, xml_ids: Sequence[str]) -> ListCommand[ProductRef]:
    """The products of the catalog carrying these external ids (our `xero:<ItemID>`)."""
    flt: dict[str, Any] = {"iblockId": iblock_id}
    if len(xml_ids) == 1:
        flt["xmlId"] = xml_ids[0]
    else:
        flt["@xmlId"] = list(xml_ids)
    return list_command(
        "catalog.product.list",
        {"select": ["id", "iblockId", "xmlId"], "filter": flt},
        _product_ref,
        list_key="products",
        id_field="id",
    )


def created_product_id(result: Any) -> int:
    """The id in catalog.product.add's (or .update's) result: `{"element": {"id": …}}` on a real
    portal (catalog/product/catalog-product-add.md; only catalog.product.get says "product").
    Raises PermanentError for an answer without one instead of a TypeError."""
    from integrations.common.errors import PermanentError

    element = result.get("element") if isinstance(result, dict) else None
    if not isinstance(element, dict):
        element = result.get("product") if isinstance(result, dict) else None  # older catalog modules
    product_id = as_int(element.get("id")) if isinstance(element, dict) else None
    if product_id is None:
        raise PermanentError(
            f"Bitrix24 answered catalog.product.add without a product id: {str(result)[:200]}", system=SYSTEM
        )
    return product_id


def product_add(fields: Mapping[str, Any], *, iblock_id: int | None = None) -> Command[int]:
    """catalog.product.add of `fields` (as the mappers build them), into the catalog `iblock_id`."""
    wire = dict(fields) if iblock_id is None else {**fields, "iblockId": iblock_id}
    return Command("catalog.product.add", {"fields": wire}, created_product_id)


def new_product(
    *, iblock_id: int, name: str, xml_id: str, section_id: int | None = None, description: str = ""
) -> Command[int]:
    """An active product in the catalog (and a section of it), found again later by `xml_id`."""
    fields: dict[str, Any] = {"iblockId": iblock_id, "name": name, "active": "Y", "xmlId": xml_id}
    if section_id:
        fields["iblockSectionId"] = section_id
    if description:
        fields["detailText"] = description
    return Command("catalog.product.add", {"fields": fields}, created_product_id)


def product_id_ref(key: str) -> str:
    """The id of the product a `product_add` command under `key` made, for a later command of the
    same batch."""
    return ref(key, "element", "id")


def product_update(product_id: int, fields: Mapping[str, Any]) -> Command[Any]:
    return Command("catalog.product.update", {"id": product_id, "fields": dict(fields)})


def product_delete(product_id: int) -> Command[Any]:
    return Command("catalog.product.delete", {"id": product_id})


def prices_of(product_id: int, price_type: int) -> Command[list[Price]]:
    def parse(result: Any) -> list[Price]:
        return [
            Price(
                id=as_int(r.get("id")) or 0,
                product_id=as_int(r.get("productId")),
                price_type=as_int(r.get("catalogGroupId")),
            )
            for r in _wrapped(result, "prices")
        ]

    return Command(
        "catalog.price.list",
        {
            "select": ["id", "productId", "catalogGroupId"],
            "filter": {"productId": product_id, "catalogGroupId": price_type},
        },
        parse,
    )


def price_add(product_id: int | str, price_type: int, price: Any, currency: str) -> Command[Any]:
    """catalog.price.add; product_id may be a product_id_ref to a product made in the same batch."""
    return Command(
        "catalog.price.add",
        {"fields": {"productId": product_id, "catalogGroupId": price_type, "price": price, "currency": currency}},
    )


def price_update(price_id: int, product_id: int, price_type: int, price: Any, currency: str) -> Command[Any]:
    return Command(
        "catalog.price.update",
        {
            "id": price_id,
            "fields": {"productId": product_id, "catalogGroupId": price_type, "price": price, "currency": currency},
        },
    )


def vats_list() -> Command[list[Vat]]:
    def parse(result: Any) -> list[Vat]:
        return [
            Vat(id=as_int(r.get("id")) or 0, name=as_str(r.get("name")), rate=as_decimal(r.get("rate")))
            for r in _wrapped(result, "vats")
        ]

    return Command("catalog.vat.list", {}, parse)


def _currency(row: dict[str, Any]) -> Currency:
    return Currency(
        code=as_str(row.get("CURRENCY")),
        name=as_str(row.get("FULL_NAME")),
        base=as_str(row.get("BASE")) == "Y",
        amount=as_decimal(row.get("AMOUNT")),
        amount_cnt=as_decimal(row.get("AMOUNT_CNT")),
    )


def currencies_list() -> Command[list[Currency]]:
    """The CRM's currencies in their SORT order."""

    def parse(result: Any) -> list[Currency]:
        return [_currency(r) for r in rows_of(result, None) if r.get("CURRENCY")]

    return Command("crm.currency.list", {"order": {"SORT": "ASC"}}, parse)


def currency_base() -> Command[str]:
    return Command("crm.currency.base.get", {}, lambda result: as_str(result or ""))

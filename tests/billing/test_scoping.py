"""Tenant scoping fails closed (docs: architecture, rule 1).

- ``TenantScopedMixin`` (billing.scoping) owns ``get_queryset``/``get_object`` of the console, API and
  portal bases: a subclass that overrides them is refused when the class is created, its
  ``scoped_queryset`` hook can only narrow, and another tenant's object is a 404 like a missing one.
- Every tenant-owned model (a ``biller`` foreign key) has ``objects.for_biller`` and ``cross_tenant``.
- The view modules reach tenant rows only through the mixin, ``Model.objects.for_biller(biller)`` or,
  on a path that crosses tenants on purpose, ``Model.objects.cross_tenant("<named reason>")``: an AST
  scan of their source (``scan_source``) finds any other ``<TenantModel>.objects.<…>``, a model handed
  to ``get_object_or_404``, a ``biller=`` filter written by hand, and ``get_queryset``/``get_object``
  overrides.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db.models import ForeignKey, QuerySet
from django.http import Http404
from django.test import RequestFactory

from billing.api.base import TenantAPIView
from billing.models import Biller, Customer, Invoice
from billing.portal.views import PortalView
from billing.scoping import BYPASS_REASONS, CrossTenantRefused, TenantScopedMixin
from billing.views import TenantConsoleView
from tests.factories import make_customer, make_invoice

ROOT = Path(__file__).resolve().parents[2]
VIEW_MODULES = (
    "billing/*views*.py",
    "billing/console_*.py",
    "billing/api/*.py",
    "billing/portal/*views*.py",
    "payeasy/*views*.py",
    "payeasy/staff/*.py",
    "payeasy/*/views*.py",
    "reconciliation/views/*.py",
    "reconciliation/api/*.py",
    "reconciliation/staff_views.py",
)
ALLOWED_MANAGER_CALLS = {"for_biller", "cross_tenant", "none"}
HAND_FILTERS = {"filter", "exclude", "get", "get_or_create", "update_or_create"}
BASES = (TenantConsoleView, TenantAPIView, PortalView)


def tenant_models() -> dict[str, type]:
    """Every model of billing, payeasy and reconciliation with a ``biller`` foreign key to the tenant."""
    found = {}
    for label in ("billing", "payeasy", "reconciliation"):
        for model in apps.get_app_config(label).get_models():
            field = next((f for f in model._meta.get_fields() if f.name == "biller"), None)
            if isinstance(field, ForeignKey) and field.related_model is Biller:
                found[model.__name__] = model
    return found


def view_module_paths() -> list[Path]:
    paths = {p for pattern in VIEW_MODULES for p in ROOT.glob(pattern)}
    return sorted(p for p in paths if p.name != "__init__.py")


def _manager_call(node: ast.Attribute, models: set[str]) -> tuple[str, str] | None:
    """``(<Model>, <method>)`` for ``<Model>.objects.<method>`` / ``<Model>._default_manager.<method>``."""
    manager = node.value
    if (
        isinstance(manager, ast.Attribute)
        and manager.attr in {"objects", "_default_manager"}
        and isinstance(manager.value, ast.Name)
        and manager.value.id in models
    ):
        return manager.value.id, node.attr
    return None


def scan_source(source: str, path: str, models: set[str]) -> list[str]:
    """What in a view module reaches tenant rows around the tenant filter, one line per finding."""
    tree = ast.parse(source, path)
    found: list[str] = []
    managers_used_as_base: set[int] = set()
    for node in ast.walk(tree):
        where = f"{path}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Attribute):
            call = _manager_call(node, models)
            if call is not None:
                managers_used_as_base.add(id(node.value))
                model, method = call
                if method not in ALLOWED_MANAGER_CALLS:
                    found.append(f"{where}: {model}.objects.{method}(…): use {model}.objects.for_biller(…)")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            call = _manager_call(node.func, models)
            if call is not None and call[1] == "cross_tenant":
                reason = node.args[0] if node.args else None
                if not (isinstance(reason, ast.Constant) and reason.value in BYPASS_REASONS):
                    found.append(f"{where}: cross_tenant() needs a named reason (one of BYPASS_REASONS)")
            by_hand = any(k.arg in {"biller", "biller_id"} for k in node.keywords)
            if node.func.attr in HAND_FILTERS and by_hand:
                found.append(f"{where}: .{node.func.attr}(biller=…) by hand: use for_biller(…)")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"get_object_or_404", "get_list_or_404"}
            and node.args
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id in models
        ):
            found.append(f"{where}: {node.func.id}({node.args[0].id}, …): pass a scoped queryset")
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name in {
                    "get_queryset",
                    "get_object",
                }:
                    found.append(
                        f"{path}:{item.lineno}: {node.name}.{item.name} overrides the tenant filter's owner "
                        "(billing.scoping.TenantScopedMixin): override scoped_queryset(qs)"
                    )
    for node in ast.walk(tree):  # a bare manager (``Invoice.objects`` handed on): every tenant's rows
        if (
            isinstance(node, ast.Attribute)
            and node.attr in {"objects", "_default_manager"}
            and isinstance(node.value, ast.Name)
            and node.value.id in models
            and id(node) not in managers_used_as_base
        ):
            found.append(f"{path}:{node.lineno}: {node.value.id}.{node.attr} handed on unscoped")
    return found


# --- the scan ----------------------------------------------------------------------------------------------


def test_every_tenant_owned_model_has_for_biller_and_cross_tenant() -> None:
    models = tenant_models()
    assert {"Invoice", "Customer", "WebhookDelivery", "LedgerEntry"} <= set(models)
    missing = [
        name
        for name, model in models.items()
        if not (hasattr(model.objects, "for_biller") and hasattr(model.objects, "cross_tenant"))
    ]
    assert not missing, f"tenant-owned models without objects = TenantManager(): {missing}"


def test_the_view_modules_reach_tenant_rows_only_through_the_scoping() -> None:
    models = set(tenant_models())
    paths = view_module_paths()
    assert any(p.name == "console_views.py" for p in paths) and any("staff" in p.parts for p in paths)
    found = [
        line for path in paths for line in scan_source(path.read_text(), str(path.relative_to(ROOT)), models)
    ]
    assert not found, "tenant rows reached around the tenant filter:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("source", "finding"),
    [
        ("Customer.objects.filter(biller=self.biller)", "Customer.objects.filter"),
        ("qs.filter(biller=self.biller, code=code)", ".filter(biller=…) by hand"),
        ("Invoice.objects.select_related('customer').get(pk=pk)", "Invoice.objects.select_related"),
        ("get_object_or_404(Invoice, pk=pk)", "get_object_or_404(Invoice"),
        ("get_object_or_404(Invoice.objects, pk=pk)", "Invoice.objects handed on unscoped"),
        ("Invoice.objects.cross_tenant('because')", "needs a named reason"),
        ("class V(TenantConsoleView):\n    def get_queryset(self): ...", "V.get_queryset overrides"),
        ("class V(TenantAPIView):\n    def get_object(self, pk): ...", "V.get_object overrides"),
    ],
)
def test_the_scan_finds_what_goes_around_the_filter(source: str, finding: str) -> None:
    found = scan_source(source, "x.py", set(tenant_models()))
    assert any(finding in line for line in found), found


@pytest.mark.parametrize(
    "source",
    [
        "Customer.objects.for_biller(self.biller).filter(code=code)",
        "Invoice.objects.none()",
        "TellerFile.objects.cross_tenant('staff').select_related('biller')",
        "Biller.objects.filter(biller_code=code)",  # the tenant itself, not a tenant's row
        "self.get_queryset().filter(original=invoice)",
    ],
)
def test_the_scan_lets_the_scoped_ways_pass(source: str) -> None:
    assert scan_source(source, "x.py", set(tenant_models())) == []


# --- the mixin ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("base", BASES, ids=lambda b: b.__name__)
@pytest.mark.parametrize("owned", ["get_queryset", "get_object"])
def test_a_view_that_overrides_the_owners_is_refused_when_its_class_is_made(base: type, owned: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=f"overrides {owned}"):
        type("Rogue", (base,), {owned: lambda self, *args: None, "__module__": __name__})


def test_an_owner_from_a_class_earlier_in_the_mro_is_refused_too() -> None:
    class Listing:
        def get_queryset(self) -> QuerySet:
            return Invoice.objects.cross_tenant("tests")

    with pytest.raises(ImproperlyConfigured):
        type("Rogue", (Listing, TenantConsoleView), {"__module__": __name__})


class _View(TenantScopedMixin):
    model = Invoice

    def __init__(self, biller: Biller | None, **kwargs: Any) -> None:
        self.request = RequestFactory().get("/")
        self.request.biller = biller  # type: ignore[attr-defined]
        self.kwargs = kwargs


def _invoice(biller: Biller) -> Invoice:
    return make_invoice(biller=biller, customer=make_customer(biller))


@pytest.mark.django_db
def test_get_object_is_404_for_another_tenants_object_as_for_a_missing_one(
    biller: Biller, other_biller: Biller
) -> None:
    mine, theirs = _invoice(biller), _invoice(other_biller)
    view = _View(biller)
    assert view.get_object(mine.pk) == mine
    assert _View(biller, pk=mine.pk).get_object() == mine
    for pk in (theirs.pk, 987654321, "not-a-number"):
        with pytest.raises(Http404):
            view.get_object(pk)
    assert list(view.get_queryset()) == [mine]


@pytest.mark.django_db
def test_no_tenant_no_rows(biller: Biller) -> None:
    _invoice(biller)
    assert list(_View(None).get_queryset()) == []
    with pytest.raises(Http404):
        _View(None).get_object(Invoice.objects.for_biller(biller).get().pk)


@pytest.mark.django_db
def test_scoped_queryset_only_narrows(biller: Biller, other_biller: Biller) -> None:
    mine, theirs = _invoice(biller), _invoice(other_biller)

    class Widening(_View):
        def scoped_queryset(self, qs: QuerySet) -> QuerySet:
            return Invoice.objects.cross_tenant("tests")  # every tenant's rows: the filter still applies

    class Narrowing(_View):
        def scoped_queryset(self, qs: QuerySet) -> QuerySet:
            return qs.filter(pk=theirs.pk)

    assert list(Widening(biller).get_queryset()) == [mine]
    assert list(Narrowing(biller).get_queryset()) == []

    class OtherModel(_View):
        def scoped_queryset(self, qs: QuerySet) -> QuerySet:
            return Customer.objects.all()

    with pytest.raises(ImproperlyConfigured):
        OtherModel(biller).get_queryset()


@pytest.mark.django_db
def test_for_biller_and_cross_tenant(biller: Biller, other_biller: Biller) -> None:
    mine, theirs = _invoice(biller), _invoice(other_biller)
    assert list(Invoice.objects.for_biller(biller)) == [mine]
    assert list(Invoice.objects.for_biller(other_biller.pk)) == [theirs]
    assert list(Invoice.objects.for_biller(None)) == []  # fail closed
    assert set(Invoice.objects.cross_tenant("staff")) == {mine, theirs}
    with pytest.raises(CrossTenantRefused):
        Invoice.objects.cross_tenant("because")

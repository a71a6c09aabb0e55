"""The audit trail in words (billing.audit_labels): every action code recorded anywhere has a label, and
the table shows labels, field names, choice labels, yes/no and localized dates in Japanese and English."""

from __future__ import annotations

import ast
import datetime
import pathlib
import re
from collections.abc import Iterator

import pytest
from django.template.loader import render_to_string
from django.utils import translation

from billing import audit_labels
from billing.models import AuditEntry, Biller
from billing.services.audit import audit_record

ROOT = pathlib.Path(__file__).resolve().parents[2]
APPS = ("billing", "payeasy", "reconciliation")
CODE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
# The functions that write an entry (their ``action=`` is an audit code even when it is not a literal).
AUDIT_CALLS = {"audit_record", "audit_field_set", "login_audit", "_audit"}


def _dynamic_values() -> dict[tuple[str, str], list[str]]:
    """What the non-literal codes of the source can be: (file, the f-string's literal prefix) → the values
    of its placeholder. A new dynamic code fails the scan until it is listed here."""
    from payeasy.models import TellerFile
    from reconciliation.models import Action

    return {
        ("payeasy/services/teller.py", "teller_file."): list(TellerFile.Status.values),
        ("reconciliation/services/findings.py", "finding."): list(Action.Kind.values),
    }


def _literals(node: ast.expr) -> list[str] | None:
    """Every string ``node`` can be, when it is made of literals (constants, ``a if c else b``, f-strings
    of those); None when it depends on something else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        body, orelse = _literals(node.body), _literals(node.orelse)
        return None if body is None or orelse is None else body + orelse
    if isinstance(node, ast.JoinedStr):
        out = [""]
        for part in node.values:
            values = _literals(part.value if isinstance(part, ast.FormattedValue) else part)
            if values is None:
                return None
            out = [a + b for a in out for b in values]
        return out
    return None


def _functions(tree: ast.Module) -> Iterator[tuple[ast.FunctionDef | ast.AsyncFunctionDef | None, ast.AST]]:
    """Every node with the function it is in (None at module level)."""
    stack: list[tuple[ast.FunctionDef | ast.AsyncFunctionDef | None, ast.AST]] = [(None, tree)]
    while stack:
        function, node = stack.pop()
        for child in ast.iter_child_nodes(node):
            inner = child if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
            yield inner, child
            stack.append((inner, child))


def _module_dict_values(tree: ast.Module, name: str) -> list[str] | None:
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        named = any(isinstance(t, ast.Name) and t.id == name for t in targets)
        if named and isinstance(node.value, ast.Dict):
            found = [_literals(v) for v in node.value.values if v is not None]
            return None if any(f is None for f in found) else [s for f in found if f for s in f]
    return None


def _name_values(tree: ast.Module, function: ast.AST | None, name: str) -> list[str] | None:
    """The codes a local variable ``name`` holds when it is set from a module-level dict of literals
    (``action = _TRANSITIONS.get(...)``) or from literals."""
    if function is None:
        return None
    for node in ast.walk(function):
        if not isinstance(node, ast.Assign):
            continue
        if not any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            continue
        value = node.value
        literal = _literals(value)
        if literal is not None:
            return literal
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute):
            value = value.func.value
        elif isinstance(value, ast.Subscript):
            value = value.value
        if isinstance(value, ast.Name):
            return _module_dict_values(tree, value.id)
    return None


def recorded_codes(root: pathlib.Path = ROOT) -> tuple[dict[str, list[str]], list[str]]:
    """Scan the product's source for the calls that record an audit entry: (code → where, unresolved)."""
    dynamic = _dynamic_values()
    codes: dict[str, list[str]] = {}
    unresolved: list[str] = []
    for app in APPS:
        for path in sorted(root.joinpath(app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            relative = str(path.relative_to(root))
            tree = ast.parse(path.read_text(), relative)
            for function, node in _functions(tree):
                if not isinstance(node, ast.Call):
                    continue
                called = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                for keyword in node.keywords:
                    if keyword.arg != "action":
                        continue
                    where = f"{relative}:{node.lineno}"
                    values = _literals(keyword.value)
                    if values is not None:  # any call's literal code (helpers pass them on)
                        for value in values:
                            if CODE.match(value):
                                codes.setdefault(value, []).append(where)
                        continue
                    if called not in AUDIT_CALLS:
                        continue
                    value = keyword.value
                    if isinstance(value, ast.Name):
                        args = (function.args.kwonlyargs + function.args.args) if function else []
                        params = {a.arg for a in args}
                        if value.id in params:
                            continue  # passed through: its callers' literals are scanned
                        resolved = _name_values(tree, function, value.id)
                    elif isinstance(value, ast.JoinedStr) and isinstance(value.values[0], ast.Constant):
                        prefix = str(value.values[0].value)
                        tail = dynamic.get((relative, prefix))
                        two_parts = len(value.values) == 2
                        resolved = [prefix + v for v in tail] if tail is not None and two_parts else None
                    else:
                        resolved = None
                    if resolved is None:
                        unresolved.append(f"{where}: action={ast.unparse(value)}")
                    else:
                        for code in resolved:
                            codes.setdefault(code, []).append(where)
    return codes, unresolved


def test_every_action_code_recorded_in_the_code_base_has_a_label() -> None:
    codes, unresolved = recorded_codes()
    assert unresolved == [], "a dynamic audit code the scan cannot enumerate: list it in _dynamic_values"
    missing = {code: where for code, where in codes.items() if code not in audit_labels.ACTION_LABELS}
    assert missing == {}, "audit codes without a label in billing/audit_labels.py ACTION_LABELS"


def test_the_scan_sees_literal_conditional_formatted_and_table_codes() -> None:
    codes, _unresolved = recorded_codes()
    # a literal, both sides of a conditional, an f-string of a conditional, a module-level table, f-strings
    # of a model's choices, and a code a helper passes on (two_factor's _reissue_codes)
    for code in (
        "contract.add",
        "customer_account.activate",
        "customer_account.block",
        "invoice.approve",
        "invoice.reject",
        "biller.suspend",
        "teller_file.rejected",
        "finding.write_off",
        "console.recovery_codes_regenerate",
    ):
        assert code in codes, code
    assert len(codes) >= 70


def test_the_scan_catches_a_new_code_and_a_dynamic_one(tmp_path: pathlib.Path) -> None:
    (tmp_path / "billing").mkdir()
    (tmp_path / "billing" / "new.py").write_text(
        "def f(row, kind):\n"
        '    audit_record(actor=None, action="brand_new.thing")\n'
        '    audit_record(actor=None, action=f"brand_new.{row.state}")\n'
    )
    codes, unresolved = recorded_codes(tmp_path)
    assert codes == {"brand_new.thing": ["billing/new.py:2"]}
    assert "brand_new.thing" not in audit_labels.ACTION_LABELS  # so the test above would fail
    assert unresolved == ["billing/new.py:3: action=f'brand_new.{row.state}'"]


def test_an_unknown_code_reads_as_words_never_dotted() -> None:
    with translation.override("en"):
        assert audit_labels.action_label("contract.add") == "Contracted bank added"
        assert audit_labels.action_label("contract.archive_all") == "Contracted bank: archive all"
        assert audit_labels.action_label("gizmo_box.open") == "Gizmo box: open"
        assert audit_labels.action_label("plain") == "Plain"
    with translation.override("ja"):
        assert "." not in audit_labels.action_label("gizmo_box.open")


def _entry(biller: Biller) -> None:
    audit_record(
        actor=None,
        action="biller.update",
        biller=biller,
        target=biller,
        summary="settings",
        before={"reminder_days": 3, "ip": ""},
        after={"reminder_days": 5, "ip": "192.0.2.1"},
    )
    when = datetime.datetime(2026, 4, 1, 0, 5, 7, 123456, tzinfo=datetime.UTC)  # 09:05:07 JST
    AuditEntry.objects.create(
        created_at=when,
        actor_label="system",
        action="contract.add",
        biller=biller,
        target_type="billing.Biller",
        target_id=str(biller.pk),
        before={"late_payment_policy": "accept", "console_totp_for_operators": False},
        after={
            "late_payment_policy": "refuse",
            "console_totp_for_operators": True,
            "valid_from": "2026-05-01",
            "paid_at": when.isoformat(),
        },
    )


def _table(biller: Biller) -> str:
    entries = AuditEntry.objects.filter(biller=biller).order_by("id")
    return render_to_string("components/audit_table.html", {"entries": entries, "with_changes": True})


@pytest.mark.django_db
def test_the_table_in_japanese(biller: Biller) -> None:
    _entry(biller)
    with translation.override("ja"):
        html = _table(biller)
    raw_forms = (
        "contract.add",
        "biller.update",
        "late_payment_policy",
        ": accept",
        "True",
        "False",
        ".123456",
    )
    for raw in raw_forms:
        assert raw not in html, raw
    assert "契約銀行の追加" in html  # contract.add
    assert "収納企業の情報の変更" in html  # biller.update
    assert "期限後収納の扱い: 支払期限後も収納する → 支払期限後は収納しない（B003）" in html
    assert "担当者の2段階認証: いいえ → はい" in html
    assert "2026年4月1日 09:05" in html  # created_at and the stored ISO time, in JST, to the minute
    assert "2026年5月1日" in html
    assert 'datetime="2026-04-01T09:05:07+09:00"' in html
    assert "システム" in html  # the system as the actor


@pytest.mark.django_db
def test_the_table_in_english(biller: Biller) -> None:
    _entry(biller)
    with translation.override("en"):
        html = _table(biller)
    assert "Contracted bank added" in html
    assert "Biller details changed" in html
    assert (
        "Late payment policy: Accept payments after the due date → Refuse payments after the due date (B003)"
        in html
    )
    assert "Operators need two-step verification: No → Yes" in html
    assert "Reminder days before due: 3 → 5" in html
    assert "IP address: — → 192.0.2.1" in html
    assert "April 1, 2026, 09:05" in html or "Apr. 1, 2026, 09:05" in html
    assert "contract.add" not in html and ".123456" not in html


@pytest.mark.django_db
def test_staff_audit_list_filters_by_a_labelled_action(staff_client, biller: Biller) -> None:  # type: ignore[no-untyped-def]
    _entry(biller)
    with translation.override("en"):
        response = staff_client.get("/staff/audit/", {"action": "contract.add", "biller": biller.biller_code})
    assert response.status_code == 200
    html = response.content.decode()
    assert '<option value="contract.add" selected>' in html
    assert "Contracted bank added" in html or "契約銀行の追加" in html
    assert "<code>contract.add</code>" not in html

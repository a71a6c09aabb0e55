"""The sandbox bank's pages: the 情報リンク entry (open the envelope, log in, pay, return) and the ATM
(three numbers, inquiry, pay). State between the pages travels in a signed form field, not the session:
the sandbox leaves the portal's session alone.
"""

from __future__ import annotations

import datetime
import secrets
from typing import Any

from django.core import signing
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from billing.numbers import ATM_CASH_LIMIT
from payeasy import handoff
from payeasy.banks import bank_get
from payeasy.csp import allow_form_action
from payeasy.models import Channel
from payeasy.sandbox import bank
from payeasy.sandbox.forms import DEMO_LOGIN, DEMO_PASSWORD, AtmForm, LoginForm

SALT = "payeasy.sandbox-bank"
LOGIN_WINDOW = handoff.TTL  # from the hand-off to the payment, as a real bank allows about 30 minutes
ATM_WINDOW = datetime.timedelta(minutes=10)
GUARD_SECONDS = 24 * 3600

REFUSAL_TITLES = {
    "expired": gettext_lazy("Expired hand-off"),
    "tampered": gettext_lazy("Tampered hand-off"),
    "malformed": gettext_lazy("Damaged hand-off"),
    "replayed": gettext_lazy("Hand-off already used"),
    "unknown_key": gettext_lazy("Unknown key"),
    "key_retired": gettext_lazy("Retired key"),
    "key_unreadable": gettext_lazy("Key not readable"),
    "session": gettext_lazy("Session ended"),
    "unknown_bank": gettext_lazy("Unknown bank"),
}


def _context(playing: str = "", **extra: Any) -> dict[str, Any]:
    """The pages' context; ``playing``: the bank the sandbox plays for this hand-off (its own by default),
    whose name the bank's header shows."""
    code = playing or bank.bank_code()
    return {
        "sandbox_bank": bank_get(code),
        "sandbox_bank_code": code,
        "demo_login": DEMO_LOGIN,
        "demo_password": DEMO_PASSWORD,
        **extra,
    }


def _dump(state: dict[str, Any]) -> str:
    return signing.dumps(state, salt=SALT, compress=True)


def _load(request: HttpRequest, max_age: datetime.timedelta) -> dict[str, Any] | None:
    try:
        state = signing.loads(request.POST.get("state", ""), salt=SALT, max_age=max_age)
    except signing.BadSignature:  # SignatureExpired included
        return None
    return state if isinstance(state, dict) else None


def _refused(
    request: HttpRequest, code: str, message: str, status: int = 400, playing: str = ""
) -> HttpResponse:
    title = REFUSAL_TITLES.get(code, _("Refused"))
    return render(
        request,
        "payeasy/sandbox/refused.html",
        _context(playing, code=code, title=str(title), message=message),
        status=status,
    )


def _pay_once(guard: str, bill: dict[str, Any], channel: str, playing: str = "") -> bank.LineResult | None:
    """Pay ``bill`` (the numbers and amount of a hand-off or an ATM inquiry) over the line, once per
    ``guard``, as bank ``playing`` (the sandbox's own by default): None when it was paid already; a
    refused payment frees the guard for another try."""
    if not cache.add(guard, "1", timeout=GUARD_SECONDS):
        return None
    as_bank = {"as_bank": playing} if playing and playing != bank.bank_code() else {}
    result = bank.pay(
        biller_code=bill["biller_code"],
        customer_number=bill["customer_number"],
        confirmation_number=bill["confirmation_number"],
        amount=int(bill["amount"]),
        channel=channel,
        **as_bank,
    )
    if not result.ok:
        cache.delete(guard)
    return result


def _session_over(request: HttpRequest) -> HttpResponse:
    return _refused(
        request,
        "session",
        _(
            "Your sandbox bank session has ended (or its form was altered). "
            "Start again from the biller's page."
        ),
    )


def _see_other(url: str) -> HttpResponseRedirect:
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


def _bill(payload: dict[str, Any]) -> dict[str, Any]:
    bill = dict(payload)
    bill["due"] = datetime.date.fromisoformat(bill["due_date"])
    bill["over_cash_limit"] = int(bill["amount"]) > ATM_CASH_LIMIT
    return bill


# --- internet banking: the 情報リンク entry -----------------------------------------------------------------


@never_cache
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "payeasy/sandbox/home.html", _context(played_banks=bank.played_banks()))


@csrf_exempt  # the POST comes from the biller's portal, another site for a real bank
@require_POST
@never_cache
def entry(request: HttpRequest, bank_code: str = "") -> HttpResponse:
    """Open the envelope (once: its nonce is recorded) and show the bill with the login form. At
    ``entry/<bank_code>/`` the sandbox plays that bank (one the demo wired to it): it opens the envelope
    with that bank's key and pays as that bank."""
    playing = bank_code or bank.bank_code()
    if not (playing.isascii() and playing.isdigit() and len(playing) == 4 and bank.plays(playing)):
        return _refused(
            request,
            "unknown_bank",
            _("The sandbox bank does not play bank %(code)s: its 情報リンク entry is not the sandbox's.")
            % {"code": playing[:8]},
            status=404,
        )
    try:
        payload = handoff.handoff_open(request.POST.get("envelope", ""), bank_code=playing)
    except handoff.HandoffError as exc:
        return _refused(request, exc.code, exc.message, playing=playing)
    state = {"p": payload.as_dict(), "in": False, "b": playing}
    return _login_page(request, state, LoginForm())


def _login_page(
    request: HttpRequest, state: dict[str, Any], form: LoginForm, status: int = 200
) -> HttpResponse:
    context = _context(
        state.get("b", ""),
        bill=_bill(state["p"]),
        form=form,
        state=_dump(state),
        return_url=state["p"]["return_url"],
    )
    return render(request, "payeasy/sandbox/login.html", context, status=status)


def _confirm_page(
    request: HttpRequest, state: dict[str, Any], *, error: str = "", code: str = "", status: int = 200
) -> HttpResponse:
    context = _context(
        state.get("b", ""),
        bill=_bill(state["p"]),
        state=_dump(state),
        error=error,
        code=code,
        return_url=state["p"]["return_url"],
    )
    response = render(request, "payeasy/sandbox/confirm.html", context, status=status)
    # paying (or cancelling) redirects to the return URL: on a tenant host, another origin
    return allow_form_action(response, state["p"]["return_url"])


@require_POST
@never_cache
def login(request: HttpRequest) -> HttpResponse:
    state = _load(request, LOGIN_WINDOW)
    if state is None or "p" not in state:
        return _session_over(request)
    form = LoginForm(request.POST)
    if not form.is_valid():
        return _login_page(request, state, form, status=400)
    state["in"] = True
    return _confirm_page(request, state)


@require_POST
@never_cache
def pay(request: HttpRequest) -> HttpResponse:
    """Pay: a 1200 over the line (channel 05); on 0000 back to the biller's return URL, otherwise the
    error and no redirect. The same hand-off pays once."""
    state = _load(request, LOGIN_WINDOW)
    if state is None or "p" not in state or not state.get("in"):
        return _session_over(request)
    p = state["p"]
    if "cancel" in request.POST:
        return _see_other(p["return_url"])
    result = _pay_once(f"sandbox-bank:paid:{p['nonce']}", p, Channel.INFO_LINK, state.get("b", ""))
    if result is None:
        return _refused(
            request,
            "replayed",
            _("This bill was already paid with this hand-off."),
            status=409,
            playing=state.get("b", ""),
        )
    if not result.ok:
        return _confirm_page(request, state, error=result.message, code=result.code, status=502)
    return _see_other(p["return_url"])


# --- the ATM: number entry (番号入力方式) ------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@never_cache
def atm(request: HttpRequest) -> HttpResponse:
    """Key in the three numbers; a 1100 inquiry (channel 02) answers what is owed."""
    if request.method == "GET":
        return render(request, "payeasy/sandbox/atm.html", _context(form=AtmForm()))
    form = AtmForm(request.POST)
    if not form.is_valid():
        return render(request, "payeasy/sandbox/atm.html", _context(form=form), status=400)
    d = form.cleaned_data
    biller_code = bank.biller_code_for(d["payee_number"])
    result = bank.inquire(
        biller_code=biller_code,
        customer_number=d["customer_number"],
        confirmation_number=d["confirmation_number"],
    )
    if not result.ok:
        context = _context(form=form, error=result.message, code=result.code)
        return render(request, "payeasy/sandbox/atm.html", context, status=502 if not result.code else 409)
    e = result.elements
    due = str(e[10])
    bill = {
        "payee_number": d["payee_number"],
        "biller_code": biller_code,
        "customer_number": d["customer_number"],
        "confirmation_number": d["confirmation_number"],
        "amount": int(e[4]),
        "due_date": f"{due[:4]}-{due[4:6]}-{due[6:8]}",
        "biller_name": str(e[12]),
        "biller_name_kana": str(e[11]),
        "description": str(e[13]),
        "id": secrets.token_urlsafe(12),
    }
    return render(
        request, "payeasy/sandbox/atm_confirm.html", _context(bill=_bill(bill), state=_dump({"atm": bill}))
    )


@require_POST
@never_cache
def atm_pay(request: HttpRequest) -> HttpResponse:
    """Pay the amount the inquiry answered: a 1200 over the line (channel 02)."""
    state = _load(request, ATM_WINDOW)
    if state is None or "atm" not in state:
        return _refused(request, "session", _("This ATM transaction has ended. Key in the numbers again."))
    b = state["atm"]
    if "cancel" in request.POST:
        return redirect("sandbox_bank:atm")
    result = _pay_once(f"sandbox-bank:atm:{b['id']}", b, Channel.ATM)
    if result is None:
        return _refused(request, "replayed", _("This ATM transaction was already paid."), status=409)
    if not result.ok:
        context = _context(bill=_bill(b), state=_dump(state), error=result.message, code=result.code)
        return render(request, "payeasy/sandbox/atm_confirm.html", context, status=502)
    context = _context(bill=_bill(b), transaction_key=result.transaction_key)
    return render(request, "payeasy/sandbox/atm_done.html", context)

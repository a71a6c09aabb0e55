from __future__ import annotations

import re
import unicodedata
import zlib
from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

# The header's mark: a biller's logo when it has one, else a monogram in one of this many tones
# (static/css/foundation/layout.css, .brand-mark.tone-1 … tone-8).
MONOGRAM_TONES = 8

# Legal-form words that say nothing about who the biller is: left out of the monogram.
_LEGAL_FORMS = re.compile(
    r"株式会社|有限会社|合同会社|合名会社|合資会社|"
    r"(?:一般|公益)?(?:社団|財団)法人|特定非営利活動法人|NPO法人|医療法人(?:社団|財団)?|学校法人|"
    r"社会福祉法人|宗教法人|独立行政法人|地方独立行政法人|国立大学法人|協同組合|"
    r"[(（](?:株|有|同|社|財|医|学|福)[)）]|㈱|㈲|"
    r"\b(?:co|corp|corporation|inc|ltd|llc|kk|k\.k|limited|company|the)\b\.?",
    re.IGNORECASE,
)


def monogram(name: str) -> str:
    """The mark shown for a biller without a logo: its name's first character (a kanji, kana or letter),
    leaving out legal-form words (株式会社, (株), Co., Ltd.). Latin names give up to two initials
    ("Acme Water" → "AW"). An empty or unusable name gives "?"."""
    text = unicodedata.normalize("NFKC", name or "")
    text = _LEGAL_FORMS.sub(" ", text)
    words = [w for w in re.split(r"[\s・,.\-_/&()（）「」]+", text) if w]
    if not words:
        return "?"
    first = words[0][0]
    if first.isascii() and first.isalnum():
        initials = [w[0] for w in words if w[0].isascii() and w[0].isalnum()][:2]
        return "".join(initials).upper()
    return first if first.isalnum() else "?"


def tone(key: str) -> int:
    """A stable tone 1..MONOGRAM_TONES for a biller (by its slug), so each biller keeps its colour."""
    return zlib.crc32(key.encode("utf-8")) % MONOGRAM_TONES + 1


def biller_brand(biller: Any) -> dict[str, Any] | None:
    """What the header shows for a biller: name, monogram, tone and a logo URL (empty without one)."""
    if biller is None:
        return None
    name = str(getattr(biller, "legal_name", "") or "")
    return {
        "name": name,
        "monogram": monogram(name),
        "tone": tone(str(getattr(biller, "slug", "") or name)),
        "logo_url": str(getattr(biller, "logo_url", "") or ""),
    }


def _memberships(user: Any) -> list[Any]:
    from billing.tenancy import cross_tenant

    with cross_tenant("accounts"):  # the user's own memberships, of every biller
        return list(
            user.memberships.select_related("biller")
            .exclude(biller__status="suspended")
            .only("biller_id", "biller__slug", "biller__legal_name", "biller__status")
        )


def tenancy(request: HttpRequest) -> dict[str, Any]:
    """The current biller (with its header mark) and, for console users, the billers they can switch to:
    read only when a page shows the switcher (a portal customer has no memberships, and a page that
    does not render the header reads nothing)."""
    user = getattr(request, "user", None)
    memberships: Any = ()
    if user is not None and user.is_authenticated and user.realm == "console":
        memberships = SimpleLazyObject(lambda: _memberships(user))
    biller = getattr(request, "biller", None)
    return {"current_biller": biller, "biller_brand": biller_brand(biller), "my_memberships": memberships}

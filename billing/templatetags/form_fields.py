"""``{% field_group form.field %}``: a form field's label, help, errors and widget, as
``{{ form.field.as_field_group }}`` renders them.

A filter form on a list page is unbound on most requests (no query string), and an unbound form of a
class without per-request initial values renders the same HTML every time in a given language: that
HTML is kept per process (keyed by form class, prefix, field, language and ``auto_id``) instead of
rendering Django's field and widget templates on every page view. Only a form class that says so
(``renders_same_unbound = True``: no ``__init__`` that changes its fields, no choices read from data)
is kept; a bound form and a form given initial values are rendered as usual.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.forms import BoundField
from django.utils.safestring import SafeString
from django.utils.translation import get_language

register = template.Library()

_RENDERED: dict[tuple[Any, ...], SafeString] = {}
_LIMIT = 512  # distinct (form, field, language) keys: a handful of filter forms × languages


def _memo_key(field: BoundField) -> tuple[Any, ...] | None:
    form = field.form
    if not getattr(type(form), "renders_same_unbound", False) or form.is_bound or form.initial:
        return None
    language = get_language()
    return (type(form), form.prefix, field.name, language, str(form.auto_id), form.use_required_attribute)


@register.simple_tag
def field_group(field: BoundField) -> SafeString:
    key = _memo_key(field)
    if key is None:
        return field.as_field_group()
    html = _RENDERED.get(key)
    if html is None:
        html = field.as_field_group()  # SafeString: Django's own rendering, escaped as ever
        if len(_RENDERED) < _LIMIT:
            _RENDERED[key] = html
    return html

"""Yen amounts as people read them: ¥1,234 / 1,234円."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def yen(value: int | None) -> str:
    if value is None or value == "":
        return ""
    return f"{int(value):,}円"

"""``manage.py check --deploy`` warns when a production installation mounts the sandbox bank
(PAYEASY_DEMO=1): a real ``manage.py`` in a subprocess with production settings (no DJANGO_DEBUG)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WARNING_ID = "payeasy.W010"


def check_deploy(**env: str) -> str:
    """The output of ``manage.py check --deploy`` under production settings plus ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PAYEASY_"))}
    clean.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_SECRET_KEY="k3y-" + "Zq8!vR2#mW5$tY7%pL0^nB4&xC6*jH9(" * 2,
        DJANGO_ALLOWED_HOSTS="portal.example.jp,.portal.example.jp",
        PORTAL_DOMAIN="portal.example.jp",
        PORTAL_BASE_URL="https://portal.example.jp",
        PAYEASY_RUN_DIR=tempfile.gettempdir() + "/payeasy-demo-check",
        **env,
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.stdout + result.stderr


def test_check_deploy_warns_that_payeasy_demo_mounts_the_sandbox_bank() -> None:
    out = check_deploy(PAYEASY_DEMO="1")
    assert WARNING_ID in out, out
    line = next(text for text in out.splitlines() if WARNING_ID in text)
    assert "PAYEASY_DEMO" in line and "sandbox bank" in line and "/sandbox-bank/" in line, line


def test_check_deploy_is_quiet_about_it_without_payeasy_demo() -> None:
    out = check_deploy()
    assert WARNING_ID not in out, out
    assert "PAYEASY_DEMO" not in out, out


def test_check_deploy_is_quiet_about_it_in_development() -> None:
    out = check_deploy(PAYEASY_DEMO="1", DJANGO_DEBUG="1")
    assert WARNING_ID not in out, out

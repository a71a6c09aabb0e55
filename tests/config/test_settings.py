"""Production settings refuse to start without secrets and pass `check --deploy` cleanly."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    clean.update(
        {"DJANGO_SETTINGS_MODULE": "config.settings", "PAYEASY_RUN_DIR": "/tmp/payeasy-settings-test"}
    )
    clean.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


def test_production_refuses_to_start_without_a_secret_key() -> None:
    result = manage("check", DJANGO_ALLOWED_HOSTS="portal.example.jp")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_production_refuses_to_start_without_allowed_hosts() -> None:
    result = manage("check", DJANGO_SECRET_KEY="x" * 60)
    assert result.returncode != 0
    assert "DJANGO_ALLOWED_HOSTS is not set" in result.stderr


def test_check_deploy_is_clean_with_production_settings() -> None:
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "DEBUG",
        DJANGO_SECRET_KEY="k3y-" + "Zq8!vR2#mW5$tY7%pL0^nB4&xC6*jH9(" * 2,
        DJANGO_ALLOWED_HOSTS="portal.example.jp,.portal.example.jp",
        PORTAL_DOMAIN="portal.example.jp",
        PORTAL_BASE_URL="https://portal.example.jp",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_bad_boolean_names_the_variable() -> None:
    result = manage("check", DJANGO_DEBUG="maybe")
    assert result.returncode != 0 and "DJANGO_DEBUG must be one of" in result.stderr

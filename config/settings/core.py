"""Applications, middleware, templates, static files, authentication."""

from config.settings.env import BASE_DIR, DEBUG, RUN_DIR, env_list, env_str, required

SECRET_KEY = env_str("DJANGO_SECRET_KEY") or (
    "dev-only-insecure-key-do-not-use-in-production-0123456789abcdef" if DEBUG else ""
)
required("DJANGO_SECRET_KEY", SECRET_KEY)
# Previous keys during a rotation: still accepted for sessions, password-reset and pay-later links
# (Django's signing tries them after SECRET_KEY), never used to sign anything new.
SECRET_KEY_FALLBACKS = env_list("DJANGO_SECRET_KEY_FALLBACKS", [])

ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS",
    ["localhost", ".localhost", "127.0.0.1", "[::1]", "testserver"] if DEBUG else [],
)
required("DJANGO_ALLOWED_HOSTS", ALLOWED_HOSTS)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "billing",
    "payeasy",
    "reconciliation",
]

MIDDLEWARE = [
    # /healthz and /readyz answer before host checks, tenant routing and sessions (payeasy.health)
    "payeasy.health.HealthMiddleware",
    # /metrics for the scraper (bearer PAYEASY_METRICS_TOKEN; off when empty), then request counts and times
    "payeasy.metrics.MetricsMiddleware",
    "payeasy.metrics.RequestMetricsMiddleware",
    "config.logs.RequestIdMiddleware",  # request, trace and tenant ids on every log line; X-Request-ID
    # a kept page given again to the same request of the same session, after one check (billing.page_replay)
    "billing.page_replay.PageReplayMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "billing.tenancy.TenantMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "billing.two_factor.SecondFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
TENANT_URLCONF = "config.urls_tenant"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "django.template.context_processors.csp",
                "billing.context_processors.tenancy",
                "payeasy.context_processors.live",
            ],
        },
    },
]

AUTH_USER_MODEL = "billing.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env_str("DJANGO_STATIC_ROOT") or str(RUN_DIR / "staticfiles")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "billing.api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON bodies only: a form's empty field reads as "not given" in DRF, which JSON has no way to say
    # (the schema could not describe both), and no page of another site can post JSON without CORS.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Pay-easy billing portal — tenant API",
    "DESCRIPTION": (
        "収納企業（テナント）ごとのAPI。認証は `Authorization: Bearer <APIキー>`（管理コンソールで発行）。"
        'エラーはすべて `{"error": {"code", "message", "fields"}}` の形です。\n\n'
        "Per-tenant API. Authenticate with `Authorization: Bearer <API key>` (issued in the tenant console). "
        'Every error has the shape `{"error": {"code", "message", "fields"}}`.'
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
}

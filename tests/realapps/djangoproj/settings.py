"""Settings of the small Django project served in tests/scenarios/test_realapps.py: production-like, no database."""
import os

DEBUG = False
ALLOWED_HOSTS = ["*"]
SECRET_KEY = "forkwsgi-tests-only-not-secret"
ROOT_URLCONF = "tests.realapps.djangoproj.urls"
WSGI_APPLICATION = "tests.realapps.djangoproj.wsgi.application"
INSTALLED_APPS = []
DATABASES = {}
# CommonMiddleware sets Content-Length on non-streaming responses, as in most real projects.
# No CSRF middleware: the upload views are posted to by a test client, not a browser.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
USE_TZ = True
FILE_UPLOAD_TEMP_DIR = os.environ.get("REALAPPS_DATA_DIR") or None
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}

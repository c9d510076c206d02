"""A one-view Django project for the benchmark: what a framework adds to every request (URL
routing, middleware, request and response objects), with no database."""
import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpResponse
from django.urls import path

if not settings.configured:
    settings.configure(
        DEBUG=False, ALLOWED_HOSTS=["*"], SECRET_KEY=os.environ.get("BENCH_DJANGO_SECRET", "bench-only"),
        ROOT_URLCONF=__name__, USE_TZ=True,
        MIDDLEWARE=["django.middleware.security.SecurityMiddleware", "django.middleware.common.CommonMiddleware"],
    )


def hello(request):
    return HttpResponse(b"Hello, world!\n", content_type="text/plain")


urlpatterns = [path("hello", hello)]
application = get_wsgi_application()

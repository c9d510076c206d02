"""``manage.py forkwsgi``: add ``"forkwsgi.contrib.django"`` to INSTALLED_APPS.

    python manage.py forkwsgi --reload          # instead of manage.py runserver
    python manage.py forkwsgi -w 4 -b 0.0.0.0:8000

The flags are forkwsgi's own; the app defaults to ``settings.WSGI_APPLICATION``.
"""

from django.urls import path

from . import views

urlpatterns = [
    path("stream", views.stream, name="stream"),
    path("text", views.text, name="text"),
    path("file", views.file, name="file"),
    path("upload", views.upload, name="upload"),
    path("digest", views.digest, name="digest"),
    path("redirect", views.redirect_view, name="redirect"),
    path("target", views.target, name="target"),
    path("port", views.port, name="port"),
]

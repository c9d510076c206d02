import hashlib

from django.http import FileResponse, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect

from .. import digest_stream, download_path, stream_chunks, text_body


def _tag(request, response):
    response["X-Remote-Port"] = request.META["REMOTE_PORT"]
    return response


def stream(request):
    chunks = stream_chunks(int(request.GET.get("n", "3")))
    return _tag(request, StreamingHttpResponse(iter(chunks), content_type="text/plain"))


def text(request):
    return _tag(request, HttpResponse(text_body(), content_type="text/plain"))


def file(request):
    return _tag(request, FileResponse(open(download_path(), "rb"), content_type="application/octet-stream"))


def upload(request):
    upload = request.FILES["upload"]
    digest = hashlib.sha256()
    for piece in upload.chunks():
        digest.update(piece)
    return _tag(request, JsonResponse({"sha256": digest.hexdigest(), "size": upload.size,
                                       "note": request.POST.get("note")}))


def digest(request):
    sha256, size = digest_stream(request.read)
    return _tag(request, JsonResponse({"sha256": sha256, "size": size}))


def redirect_view(request):
    return _tag(request, redirect("target"))


def target(request):
    return _tag(request, HttpResponse(b"redirect target", content_type="text/plain"))


def port(request):
    return _tag(request, HttpResponse(request.META["REMOTE_PORT"].encode(), content_type="text/plain"))

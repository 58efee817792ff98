"""A moto service's requests answered without Flask's request machinery.

Called by :mod:`sandbox.launcher` for the services it builds before forking. moto serves each
service from a Flask app whose every route calls moto's own handler, with the request as moto's
``convert_to_flask_response`` passes it; Flask adds an application and a request context, its
signals, and its response processing around that call, about a fifth of the app's CPU on a call
as light as ``ssm:GetParameters`` (0.91 ms against 0.76 ms, medians of 5 x 1,500 calls). A
:class:`Lean` app routes on the same URL map and calls the same handler with the same request,
and answers with the same response: what a caller sees does not change. An error inside moto
goes up to the launcher's ``AwsErrors``, as it does from Flask's app (moto runs it in debug
mode, which re-raises).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import ClientError
from flask import Flask, Response
from moto.core.request import normalize_request
from moto.core.utils import convert_to_flask_response
from moto.moto_api import recorder
from werkzeug.exceptions import HTTPException

StartResponse = Callable[..., Any]


class Lean:
    """The WSGI app of moto's service ``app`` (a Flask app moto built), routed and answered as
    Flask answers it, without Flask's contexts. A view that is not moto's handler wrapper goes
    through Flask as before."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.url_map = app.url_map
        self.views = app.view_functions
        self.request_class = app.request_class

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            endpoint, _ = self.url_map.bind_to_environ(environ).match()
        except HTTPException as exc:  # no route (404, 405): Flask answers the exception itself
            return exc(environ, start_response)
        view = self.views.get(str(endpoint))
        if not isinstance(view, convert_to_flask_response):
            return self.app(environ, start_response)
        return answer(view.callback, self.request_class(environ))(environ, start_response)


def answer(handler: Callable[..., Any], raw: Any) -> Response:
    """moto's ``handler`` called on the request ``raw`` as ``convert_to_flask_response`` calls
    it, and its result as the response that wrapper makes of it."""
    request = normalize_request(raw)
    recorder._record_request(request)
    try:
        result = handler(request, request.raw_url, dict(request.headers))
    except ClientError as exc:
        result = 400, {}, exc.response["Error"]["Message"]
    status, headers, content = result if len(result) == 3 else (200, {}, result)
    response = Response(response=content, status=status, headers=headers)
    if request.method == "HEAD" and "content-length" in headers:
        response.headers["Content-Length"] = headers["content-length"]
    return response

"""How the app answers errors: the protocol's ``{"error": "one line"}``, one handler per error class.

A client's mistake is a 4xx naming it; a client that went away mid-request is 499 (nginx's "client closed
request"; nobody reads the answer, but metrics and the access log count it as the client's); 500 is kept for
the server's own faults."""

from __future__ import annotations

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from torchzoo.core.errors import TorchzooError, UserInputError
from torchzoo.serve_cli.server.protocol import ProtocolError

CLIENT_CLOSED = 499


def error_response(message: object, status: int) -> Response:
    """``{"error": message}`` on one line; text a client sent (lone surrogates included) is escaped, never a
    failure to encode the answer."""
    text = " ".join(str(message).split()).encode("utf-8", "backslashreplace").decode("utf-8")
    return Response(orjson.dumps({"error": text}), status_code=status, media_type="application/json")


async def protocol_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProtocolError)
    return error_response(exc, exc.status)


async def http_exception(request: Request, exc: Exception) -> Response:
    """No such route, or a method the route does not take."""
    assert isinstance(exc, HTTPException)
    response = error_response(exc.detail, exc.status_code)
    response.headers.update(exc.headers or {})
    return response


async def user_input_error(request: Request, exc: Exception) -> Response:
    """The runtime's refusals of bad input (OutputError included: one request's output that is no answer)."""
    return error_response(exc, 400)


async def client_disconnect(request: Request, exc: Exception) -> Response:
    return error_response("the client closed the connection before its request was read", CLIENT_CLOSED)


async def torchzoo_error(request: Request, exc: Exception) -> Response:
    return error_response(exc, 500)


async def unexpected(request: Request, exc: Exception) -> Response:
    return error_response("internal error", 500)


HANDLERS = {
    ProtocolError: protocol_error,
    HTTPException: http_exception,
    UserInputError: user_input_error,
    ClientDisconnect: client_disconnect,
    TorchzooError: torchzoo_error,
    Exception: unexpected,
}

"""The two ways a SensorThings request fails before it reaches the data: 400 for a malformed
request, 501 for a well-formed one we do not implement. Both carry a message and, like
the rest of the API, do not echo the client's text back (api/errors.py)."""

from __future__ import annotations

from api.errors import ApiError


def bad_request(message: str) -> ApiError:
    return ApiError(400, "invalid_query", message)


def not_implemented(message: str) -> ApiError:
    return ApiError(501, "not_implemented", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)

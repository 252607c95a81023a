"""botocore exceptions -> the typed storage errors.

One table, so every S3 call classifies failures the same way and
:mod:`gauntlet.storage.retry` can decide on types alone. Codes come from AWS
S3, Cloudflare R2, MinIO, SeaweedFS and ``rclone serve s3`` (gofakes3), which
do not all agree, so both the error code and the HTTP status are consulted.
"""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    ResponseStreamingError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from gauntlet.storage.base import (
    AccessDenied,
    BadAnswer,
    ObjectNotFound,
    PreconditionFailed,
    StorageError,
    StoreUnavailable,
    Throttled,
)


class ConditionalPutUnsupported(StorageError):
    """The server rejected ``If-None-Match: *`` as not implemented."""

    reason = "unsupported"


_NOT_FOUND = {"NoSuchKey", "NoSuchBucket", "NotFound", "404"}
_FORBIDDEN = {
    "AccessDenied",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "InvalidToken",
    "ExpiredToken",
    "AuthorizationHeaderMalformed",
    "403",
    "401",
}
# ConditionalRequestConflict (409): AWS's answer while a racing conditional
# write is in flight; retrying yields the final 412 or success.
_THROTTLED = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "TooManyRequests",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "ConditionalRequestConflict",
    "503",
    "429",
}
_PRECONDITION = {"PreconditionFailed", "412"}
_UNAVAILABLE = {"InternalError", "RequestTimeout", "RequestTimeTooSkewed"}


def map_client_error(exc: ClientError, what: str) -> StorageError:
    """Typed error for a ``ClientError``; ``what`` names the bucket/key for the message."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    message = f"{what}: {code or status} {error.get('Message', '')}".strip()
    if code in _THROTTLED or status in (429, 503):
        return Throttled(message)
    if code in _NOT_FOUND or status == 404:
        return ObjectNotFound(message)
    if code in _FORBIDDEN or status in (401, 403):
        return AccessDenied(message)
    if code in _PRECONDITION or status == 412:
        return PreconditionFailed(message)
    if code == "NotImplemented" or status == 501:
        return ConditionalPutUnsupported(message)
    if code in _UNAVAILABLE or status >= 500:
        return StoreUnavailable(message)
    return StorageError(message)


def map_botocore_error(exc: Exception, what: str) -> StorageError:
    """Typed error for anything boto3 raises; transport trouble becomes :class:`StoreUnavailable`."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, ClientError):
        return map_client_error(exc, what)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return AccessDenied(f"{what}: {exc}")
    # HTTPClientError covers read timeouts and closed connections, which are not
    # botocore ConnectionErrors (connect failures and endpoint errors are)
    transport = BotoConnectionError | HTTPClientError | IncompleteReadError | ResponseStreamingError
    if isinstance(exc, transport):
        return StoreUnavailable(f"{what}: {exc}")
    if isinstance(exc, BotoCoreError):
        return StorageError(f"{what}: {exc}")
    if isinstance(exc, OSError):  # sockets reset mid-body surface as plain OS errors
        return StoreUnavailable(f"{what}: {exc}")
    # Reading the parsed answer: a field boto3 could not find (a HEAD without
    # Content-Length) or a value of the wrong form. Peers' servers are adversarial.
    if isinstance(exc, KeyError | ValueError | AttributeError):
        return BadAnswer(f"{what}: the server's answer lacks or garbles {exc}")
    raise exc

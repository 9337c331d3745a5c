"""What an S3 failure means, in words for whoever reads the message: one StoreError per failure."""

from __future__ import annotations

from botocore.exceptions import (
    ClientError,
    FlexibleChecksumError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from campaign.errors import NotInStore, StoreError

NOT_FOUND_CODES = ("404", "NoSuchKey", "NotFound")
# The request never got an answer (botocore already made its max_attempts).
UNREACHABLE_ERRORS = (BotocoreConnectionError, HTTPClientError)


def explain(error: Exception, failed: str, where: str, *, bucket: str, endpoint: str, attempts: int) -> StoreError:
    """The StoreError for error (NotInStore when S3 says the object is absent); failed says what was tried."""
    if isinstance(error, ClientError):
        code, message = error_code(error), error.response.get("Error", {}).get("Message", str(error))
        if code in NOT_FOUND_CODES:
            return NotInStore(f"{where} is not in the store.")
        advice = _CLIENT_ERROR_ADVICE.get(code, "S3 answered {code}: {message}")
        return StoreError(f"{failed}: " + advice.format(code=code, message=message, bucket=bucket))
    for kinds, advice in _ERROR_ADVICE:
        if isinstance(error, kinds):
            return StoreError(f"{failed}: " + advice.format(error=error, endpoint=endpoint, attempts=attempts))
    return StoreError(f"{failed}: {type(error).__name__}: {error}")


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


_CHECKSUM_REJECTED = (
    "S3 refused the body: it does not match the SHA-256 computed before sending ({code}). "
    "The file changed during the upload or the data was damaged on the way: run again."
)
_CLIENT_ERROR_ADVICE = {
    "NoSuchBucket": "bucket {bucket} does not exist. Create it or pass another --store.",
    "AccessDenied": "access denied ({code}): the AWS credentials in effect may not do this.",
    "AllAccessDisabled": "access denied ({code}): all access to bucket {bucket} is disabled.",
    "InvalidAccessKeyId": "S3 does not know the access key in effect ({code}): check AWS_PROFILE.",
    "SignatureDoesNotMatch": "S3 rejected the request signature ({code}): check the secret key in effect.",
    "ExpiredToken": "the AWS session token has expired ({code}): refresh the credentials and run again.",
    "BadDigest": _CHECKSUM_REJECTED,
    "InvalidDigest": _CHECKSUM_REJECTED,
    "XAmzContentSHA256Mismatch": _CHECKSUM_REJECTED,
}
_ERROR_ADVICE = (
    (
        (NoCredentialsError, PartialCredentialsError),
        "no usable AWS credentials. Set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), "
        "or run where an instance role is available.",
    ),
    (
        FlexibleChecksumError,
        "the bytes S3 sent do not match the checksum it records ({error}). Run again; if it repeats, "
        "the stored object is damaged.",
    ),
    (
        UNREACHABLE_ERRORS,
        "the S3 endpoint {endpoint} did not answer after {attempts} attempts ({error}). Check the "
        "network and AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3, then run again.",
    ),
)

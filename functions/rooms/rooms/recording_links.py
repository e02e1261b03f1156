"""S3 access for recordings: short-lived download links."""

from __future__ import annotations

from verriflo import aws
from verriflo.errors import ServiceUnavailable


def download_url(bucket: str, key: str, ttl_s: int, filename: str) -> str:
    """A presigned GET for one recording, offered as a file download."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return aws.client("s3").generate_presigned_url(
            "get_object",
            ExpiresIn=ttl_s,
            Params={
                "Bucket": bucket,
                "Key": key,
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
            },
        )
    except (BotoCoreError, ClientError) as exc:
        raise ServiceUnavailable("Recording storage is unavailable; retry shortly.") from exc

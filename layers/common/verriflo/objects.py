"""S3 access for media: presigned uploads (single and multipart), presigned reads, whole-folder
uploads and deletes. The one module of the media functions that calls S3; driver errors become
domain errors here.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from verriflo import aws
from verriflo.errors import BadRequest, NotFound, ServiceUnavailable

CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".jpg": "image/jpeg",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
}


@contextmanager
def s3_errors(missing: str = "No such object.") -> Iterator[None]:
    """NoSuchKey/404 become NotFound; anything else from S3 becomes ServiceUnavailable."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("NoSuchKey", "404", "NotFound", "NoSuchUpload"):
            raise NotFound(missing) from exc
        if code in ("InvalidPart", "InvalidPartOrder", "EntityTooSmall"):
            raise BadRequest("The upload's parts are not valid: " + code) from exc
        raise ServiceUnavailable("Storage is unavailable; retry shortly.") from exc
    except BotoCoreError as exc:
        raise ServiceUnavailable("Storage is unavailable; retry shortly.") from exc


def _s3() -> Any:
    return aws.client("s3")


def presign_put(bucket: str, key: str, *, size: int, content_type: str, expires_s: int) -> str:
    """A URL that accepts exactly one PUT of `size` bytes (the length is part of the signature)."""
    with s3_errors():
        return _s3().generate_presigned_url(
            "put_object",
            Params={"Bucket": bucket, "Key": key, "ContentLength": size, "ContentType": content_type},
            ExpiresIn=expires_s,
        )


def start_multipart(bucket: str, key: str, content_type: str) -> str:
    """Begin a multipart upload; returns its id."""
    with s3_errors():
        return _s3().create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type)["UploadId"]


def presign_part(
    bucket: str, key: str, upload_id: str, part_number: int, *, size: int, expires_s: int
) -> str:
    """A URL for one part of a multipart upload that accepts exactly `size` bytes (the length is
    part of the signature, so S3 refuses a bigger part)."""
    with s3_errors():
        return _s3().generate_presigned_url(
            "upload_part",
            Params={
                "Bucket": bucket,
                "Key": key,
                "UploadId": upload_id,
                "PartNumber": part_number,
                "ContentLength": size,
            },
            ExpiresIn=expires_s,
        )


def complete_multipart(bucket: str, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
    """Join the uploaded parts into the object (which triggers the transcode)."""
    with s3_errors("No such upload."):
        _s3().complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in sorted(parts)]},
        )


def abort_multipart(bucket: str, key: str, upload_id: str) -> None:
    """Drop a multipart upload's parts (deleting a video that was never finished)."""
    from botocore.exceptions import ClientError

    try:
        _s3().abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except ClientError:
        pass  # already completed or aborted: nothing left to drop


def presign_get(bucket: str, key: str, expires_s: int, *, filename: str | None = None) -> str:
    """A short-lived URL that reads one object."""
    params: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if filename:
        params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
    with s3_errors():
        return _s3().generate_presigned_url("get_object", Params=params, ExpiresIn=expires_s)


def head(bucket: str, key: str) -> dict[str, Any]:
    """An object's metadata; NotFound when it is missing."""
    with s3_errors():
        return _s3().head_object(Bucket=bucket, Key=key)


def read_text(bucket: str, key: str, missing: str = "No such object.") -> str:
    """A small text object (a playlist)."""
    with s3_errors(missing):
        return _s3().get_object(Bucket=bucket, Key=key)["Body"].read().decode()


def download(bucket: str, key: str, path: Path) -> None:
    """Copy an object to a local file (S3 transfer manager: ranged, parallel)."""
    with s3_errors("The uploaded file is gone."):
        _s3().download_file(bucket, key, str(path))


SINGLE_PUT_BYTES = 8 * 1024**2  # below this one PutObject; above, the transfer manager's parallel parts


def put_file(bucket: str, key: str, path: Path) -> None:
    """Upload one file with the content type players expect."""
    content_type = (
        CONTENT_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    )
    with s3_errors():
        if path.stat().st_size < SINGLE_PUT_BYTES:
            # Segments, playlists and stills: one request each, without a transfer manager (and its
            # thread pool) per file.
            with path.open("rb") as body:
                _s3().put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        else:
            _s3().upload_file(str(path), bucket, key, ExtraArgs={"ContentType": content_type})


def put_text(bucket: str, key: str, text: str) -> None:
    """Store a small text object (a playlist being rewritten while a video is encoded)."""
    content_type = CONTENT_TYPES.get(Path(key).suffix, "text/plain")
    with s3_errors():
        _s3().put_object(Bucket=bucket, Key=key, Body=text.encode(), ContentType=content_type)


def put_files(bucket: str, prefix: str, files: list[Path], root: Path, workers: int = 8) -> list[str]:
    """Upload files under `prefix` keeping their paths relative to `root`, in parallel."""
    keys = [prefix + f.relative_to(root).as_posix() for f in files]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda pair: put_file(bucket, pair[0], pair[1]), zip(keys, files, strict=True)))
    return keys


def delete_prefix(bucket: str, prefix: str) -> int:
    """Delete every object under `prefix` (which must name one video's folder); returns how many."""
    if not prefix.endswith("/") or prefix.count("/") < 2:
        raise ValueError("refusing to delete outside one video's folder")
    deleted = 0
    with s3_errors():
        pages = _s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                _s3().delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
                deleted += len(keys)
    return deleted


def prefix_bytes(bucket: str, prefix: str) -> int:
    """The total size of the objects under `prefix` (one video's outputs)."""
    total = 0
    with s3_errors():
        for page in _s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            total += sum(int(o["Size"]) for o in page.get("Contents", []))
    return total


def delete(bucket: str, key: str) -> None:
    """Delete one object (missing is fine)."""
    with s3_errors():
        _s3().delete_object(Bucket=bucket, Key=key)

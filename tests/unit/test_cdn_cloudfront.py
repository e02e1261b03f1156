"""CloudFront signed delivery (`UseMediaCdn`): segment and poster URLs signed with the private key
read from Secrets Manager verify against its public key under CloudFront's documented canned
policy, expire when they say, and cannot be moved to another object; the template wires the same
key pair into the distribution, the key group and the functions."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from media_support import verify_cloudfront_url
from verriflo import media, playback

DOMAIN = "d111111abcdef8.cloudfront.net"
KEY_PAIR_ID = "K2JCJMDEHXQW5F"
SECRET = "verriflo/media-cdn-private-key"
SEGMENT = "org_0123456789abcdef01234567/vid_0123456789abcdef01234567/360p/seg_00003.ts"


@pytest.fixture
def key_pair(aws_env, monkeypatch):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    boto3.client("secretsmanager").create_secret(Name=SECRET, SecretString=pem)
    monkeypatch.setenv("CLOUDFRONT_DOMAIN", DOMAIN)
    monkeypatch.setenv("CLOUDFRONT_KEY_PAIR_ID", KEY_PAIR_ID)
    monkeypatch.setenv("CLOUDFRONT_PRIVATE_KEY_SECRET_NAME", SECRET)
    media.media_settings.cache_clear()
    playback._cloudfront_signer.cache_clear()
    yield private.public_key()
    media.media_settings.cache_clear()
    playback._cloudfront_signer.cache_clear()


def verify(public_key, url: str) -> int:
    return verify_cloudfront_url(public_key, url, KEY_PAIR_ID)


def test_segment_urls_are_cloudfront_urls_signed_with_the_secrets_key(key_pair):
    before = time.time()
    url = playback.segment_url(SEGMENT, 900)

    assert url.startswith(f"https://{DOMAIN}/{SEGMENT}?")
    expires = verify(key_pair, url)
    assert before + 899 <= expires <= time.time() + 901


def test_a_signature_does_not_fit_another_object_expiry_or_key(key_pair):
    url = playback.segment_url(SEGMENT, 900)
    other = url.replace("seg_00003.ts", "seg_00004.ts")
    with pytest.raises(InvalidSignature):
        verify(key_pair, other)
    longer = url.replace(f"Expires={parse_qs(urlsplit(url).query)['Expires'][0]}", "Expires=4102444800")
    with pytest.raises(InvalidSignature):
        verify(key_pair, longer)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    with pytest.raises(InvalidSignature):
        verify(stranger, url)


def test_without_a_distribution_segments_are_s3_presigned(aws_env, monkeypatch):
    monkeypatch.setenv("CLOUDFRONT_DOMAIN", "")  # what the template passes when UseMediaCdn is false
    monkeypatch.setenv("CLOUDFRONT_KEY_PAIR_ID", "")
    media.media_settings.cache_clear()
    try:
        url = playback.segment_url(SEGMENT, 900)
    finally:
        media.media_settings.cache_clear()
    parts = urlsplit(url)
    assert parts.netloc.startswith("verriflo-test-media.s3") and parts.path == f"/{SEGMENT}"
    assert "Signature=" in parts.query and "Key-Pair-Id" not in parts.query


def _template() -> dict:
    from cfnlint.decode import decode_str

    text = (Path(__file__).resolve().parents[2] / "template.yaml").read_text()
    template, errors = decode_str(text)
    assert not errors
    return template


def test_template_wires_one_key_pair_through_cloudfront_and_the_functions():
    t = _template()
    res = t["Resources"]
    cdn_only = [
        "MediaOriginAccess",
        "MediaCdnPublicKey",
        "MediaCdnKeyGroup",
        "MediaDistribution",
        "MediaBucketPolicy",
    ]
    assert all(res[name]["Condition"] == "UseMediaCdn" for name in cdn_only)
    assert res["MediaCdnPublicKey"]["Properties"]["PublicKeyConfig"]["EncodedKey"] == {
        "Ref": "MediaCdnPublicKeyPem"
    }
    assert res["MediaCdnKeyGroup"]["Properties"]["KeyGroupConfig"]["Items"] == [{"Ref": "MediaCdnPublicKey"}]
    behaviour = res["MediaDistribution"]["Properties"]["DistributionConfig"]["DefaultCacheBehavior"]
    assert behaviour["TrustedKeyGroups"] == [{"Ref": "MediaCdnKeyGroup"}]  # signed URLs only
    # Every function that signs media URLs gets the distribution, the key id and the secret's name.
    signers = [
        r
        for r in res.values()
        if "CLOUDFRONT_DOMAIN" in ((r.get("Properties") or {}).get("Environment") or {}).get("Variables", {})
    ]
    assert signers
    for function in signers:
        env = function["Properties"]["Environment"]["Variables"]
        assert env["CLOUDFRONT_DOMAIN"] == {
            "Fn::If": ["UseMediaCdn", {"Fn::GetAtt": ["MediaDistribution", "DomainName"]}, ""]
        }
        assert env["CLOUDFRONT_KEY_PAIR_ID"] == {"Fn::If": ["UseMediaCdn", {"Ref": "MediaCdnPublicKey"}, ""]}
        assert env["CLOUDFRONT_PRIVATE_KEY_SECRET_NAME"] == {"Ref": "MediaCdnPrivateKeySecretName"}
        # ... and may read that secret (only when the distribution exists)
        statements = [
            s for p in function["Properties"]["Policies"] if "Statement" in p for s in p["Statement"]
        ]
        granted = [s["Fn::If"] for s in statements if "Fn::If" in s and s["Fn::If"][0] == "UseMediaCdn"]
        assert granted and granted[0][1]["Action"] == ["secretsmanager:GetSecretValue"]
        assert "${MediaCdnPrivateKeySecretName}" in granted[0][1]["Resource"]["Fn::Sub"]

"""`relay console-deploy` (`make console-deploy`): a console build goes under console/ in the
frontend bucket with the cache rules CloudFront honours (hashed assets a year, the rest
revalidated), index.html last, unchanged assets not sent again, and index.html invalidated."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from relay_ops.cli import app
from relay_ops.console import (
    ASSET_CACHE,
    PAGE_CACHE,
    ConsoleBuildError,
    plan,
    publish,
)

pytestmark = pytest.mark.integration

INDEX = '<!doctype html><script type="module" src="/console/assets/index-Ab12Cd.js"></script>'


def _build(dist: Path, script: str = "index-Ab12Cd.js", index: str = INDEX) -> Path:
    (dist / "assets").mkdir(parents=True, exist_ok=True)
    (dist / "index.html").write_text(index)
    (dist / "assets" / script).write_text("console.log('relay')")
    (dist / "assets" / "index-Ef34Gh.css").write_text("body{margin:0}")
    (dist / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    return dist


@pytest.fixture
def aws(moto_endpoint: str) -> tuple[Any, Any, str, str]:
    """s3, cloudfront, a frontend bucket and a distribution in front of it (moto)."""
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    cloudfront = boto3.client("cloudfront", endpoint_url=moto_endpoint, region_name="us-east-1")
    bucket = f"relay-test-frontend-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    origin = f"{bucket}.s3.us-east-1.amazonaws.com"
    distribution = cloudfront.create_distribution(
        DistributionConfig={
            "CallerReference": bucket,
            "Comment": "test",
            "Enabled": True,
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {
                        "Id": "site",
                        "DomainName": origin,
                        "S3OriginConfig": {"OriginAccessIdentity": ""},
                    }
                ],
            },
            "DefaultCacheBehavior": {
                "TargetOriginId": "site",
                "ViewerProtocolPolicy": "redirect-to-https",
                "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",
            },
        }
    )["Distribution"]["Id"]
    return s3, cloudfront, bucket, distribution


def test_the_plan_sends_assets_first_and_index_html_last(tmp_path: Path) -> None:
    uploads = plan(_build(tmp_path / "dist"))

    assert [u.key for u in uploads] == [
        "console/assets/index-Ab12Cd.js",
        "console/assets/index-Ef34Gh.css",
        "console/favicon.svg",
        "console/index.html",
    ]
    by_key = {u.key: u for u in uploads}
    assert by_key["console/assets/index-Ab12Cd.js"].cache_control == ASSET_CACHE
    assert by_key["console/assets/index-Ab12Cd.js"].content_type.startswith("text/javascript")
    assert by_key["console/index.html"].cache_control == PAGE_CACHE == "no-cache"
    assert by_key["console/index.html"].content_type == "text/html; charset=utf-8"
    assert by_key["console/favicon.svg"].cache_control == PAGE_CACHE


def test_no_build_or_one_without_the_console_base_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConsoleBuildError, match="build the console first"):
        plan(tmp_path)
    root_based = '<script type="module" src="/assets/index-Ab12Cd.js"></script>'
    with pytest.raises(ConsoleBuildError, match="base /console/"):
        plan(_build(tmp_path / "dist", index=root_based))


def test_a_build_is_published_with_its_cache_rules_and_index_html_invalidated(
    tmp_path: Path, aws: tuple[Any, Any, str, str]
) -> None:
    s3, cloudfront, bucket, distribution = aws
    dist = _build(tmp_path / "dist")

    first = publish(dist, bucket=bucket, distribution_id=distribution, s3=s3, cloudfront=cloudfront)

    assert first.uploaded[-1] == "console/index.html"
    asset = s3.head_object(Bucket=bucket, Key="console/assets/index-Ab12Cd.js")
    assert asset["CacheControl"] == "public, max-age=31536000, immutable"
    assert asset["ContentType"].startswith("text/javascript")
    page = s3.head_object(Bucket=bucket, Key="console/index.html")
    assert page["CacheControl"] == "no-cache"
    assert page["ContentType"].startswith("text/html")
    assert s3.get_object(Bucket=bucket, Key="console/index.html")["Body"].read() == INDEX.encode()
    invalidation = cloudfront.get_invalidation(
        DistributionId=distribution, Id=first.invalidation_id
    )
    paths = invalidation["Invalidation"]["InvalidationBatch"]["Paths"]["Items"]
    assert sorted(paths) == ["/console/favicon.svg", "/console/index.html"]

    # the next build: a changed script gets a new name; the unchanged assets are not sent again,
    # and the old script stays for browsers still holding the previous index.html
    new_index = INDEX.replace("index-Ab12Cd.js", "index-Zz99Yy.js")
    _build(dist, script="index-Zz99Yy.js", index=new_index)
    second = publish(dist, bucket=bucket, distribution_id=None, s3=s3, cloudfront=None)

    assert "console/assets/index-Zz99Yy.js" in second.uploaded
    assert "console/assets/index-Ef34Gh.css" in second.unchanged
    assert second.invalidation_id is None
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="console/")["Contents"]}
    assert {"console/assets/index-Ab12Cd.js", "console/assets/index-Zz99Yy.js"} <= keys


def test_the_command_publishes_and_says_what_it_did(
    tmp_path: Path, aws: tuple[Any, Any, str, str], moto_endpoint: str
) -> None:
    _s3, _cloudfront, bucket, distribution = aws
    dist = _build(tmp_path / "dist")
    args = ["console-deploy", "--dist", str(dist), "--endpoint-url", moto_endpoint]
    env = {"RELAY_CONSOLE_BUCKET": bucket, "RELAY_CONSOLE_DISTRIBUTION_ID": distribution}

    result = CliRunner().invoke(app, args, env=env)

    assert result.exit_code == 0, result.output
    assert "4 files uploaded, 0 assets unchanged" in result.output
    assert f"on {distribution}" in result.output

    missing = CliRunner().invoke(app, [*args[:2], str(tmp_path / "none"), *args[3:]], env=env)
    assert missing.exit_code == 1
    assert "build the console first" in missing.output

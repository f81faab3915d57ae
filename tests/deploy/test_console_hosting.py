"""The web console is served the same way by the local gateway and by CloudFront (ADR 0014): the
same paths become index.html, the same Content-Security-Policy, and no distribution-wide error
page that would rewrite the API's own 403 and 404."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gateway.console import content_security_policy, is_file_path

REPO = Path(__file__).resolve().parents[2]
FRONTEND = REPO / "terraform" / "modules" / "frontend"

PATHS = [
    "/",
    "/console",
    "/console/",
    "/console/tasks",
    "/console/tasks/6f1c0d52-7c1e-4a83-9e55-0b0c6b1f4a07",
    "/console/webhooks/",
    "/console/index.html",
    "/console/favicon.svg",
    "/console/assets/index-Ab12Cd.js",
    "/console/assets/chunk",
    "/v1/tasks",
    "/v1/ws",
]


def _run_function(uris: list[str]) -> dict[str, dict[str, object]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("SKIPPED LOUDLY: no `node` on PATH, the CloudFront function was not run")
    script = (
        "const fs = require('fs');"
        f"eval(fs.readFileSync({json.dumps(str(FRONTEND / 'console-routes.js'))}, 'utf8'));"
        "const out = {};"
        f"for (const uri of {json.dumps(uris)}) out[uri] = handler({{request: {{uri}}}});"
        "console.log(JSON.stringify(out));"
    )
    done = subprocess.run(
        [node, "-e", script], capture_output=True, text=True, check=True, timeout=30
    )
    result: dict[str, dict[str, object]] = json.loads(done.stdout)
    return result


def test_cloudfront_routes_the_console_as_the_gateway_does() -> None:
    answers = _run_function(PATHS)

    for path in ("/", "/console"):
        redirect = answers[path]
        assert redirect["statusCode"] in {301, 302}, path
        assert redirect["headers"] == {
            "location": {"value": "/console/"},
            "cache-control": {"value": "no-cache"},
        }
    assert answers["/console"]["statusCode"] == 301  # as the gateway answers
    for path in PATHS:
        if not path.startswith("/console/"):
            if path.startswith("/v1/"):
                assert answers[path] == {"uri": path}  # the API is left alone
            continue
        relative = path.removeprefix("/console/")
        expected = path if is_file_path(relative) else "/console/index.html"
        assert answers[path] == {"uri": expected}, path


def test_cloudfront_sends_the_gateways_content_security_policy() -> None:
    main = (FRONTEND / "main.tf").read_text()
    [policy] = re.findall(r'content_security_policy\s*=\s*"(default-src[^"]*)"', main)

    with_storage = policy.replace("${local.storage_sources}", " https://a.s3.amazonaws.com")
    assert with_storage == content_security_policy(["https://a.s3.amazonaws.com"])
    assert policy.replace("${local.storage_sources}", "") == content_security_policy([])


def test_no_error_page_rewrites_the_apis_answers() -> None:
    main = (FRONTEND / "main.tf").read_text()
    code = "\n".join(line for line in main.splitlines() if not line.lstrip().startswith("#"))

    assert "custom_error_response" not in code
    assert re.search(r'path_pattern\s*=\s*"/v1/\*"', code)
    assert "viewer-request" in code

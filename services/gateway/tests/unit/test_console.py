"""The built web console at /console/ (RELAY_CONSOLE_DIR): index.html for every app route, hashed
assets cached for a year, index.html revalidated, security headers on every answer, nothing
outside the build ever served, and a clear 404 where no console is configured."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import ValidationError

from gateway.app import create_app
from gateway.console import IMMUTABLE, content_security_policy
from gateway.settings import GatewaySettings
from relay_devkit.testing import wait_ready
from relay_shared.composition import given
from relay_shared.internal_auth import generate_keypair

from .fakes import Fakes

MOTO = "http://127.0.0.1:5055"
INDEX = '<!doctype html><script type="module" src="/console/assets/index-Ab12Cd.js"></script>'
SCRIPT = "console.log('relay')"


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    """A build as `npm run build` leaves it, beside a file that must never be served."""
    (tmp_path / "secret.txt").write_text("not for the console")
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(INDEX)
    (dist / "assets" / "index-Ab12Cd.js").write_text(SCRIPT)
    (dist / "assets" / "index-Ef34Gh.css").write_text("body{margin:0}")
    (dist / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (dist / ".env").write_text("SECRET=1")
    return dist


async def _client(settings: GatewaySettings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, ports=given(Fakes().ports()))
    async with LifespanManager(app):
        await wait_ready(app)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


def _settings(**values: object) -> GatewaySettings:
    return GatewaySettings(internal_auth_private_key=generate_keypair()[0], **values)  # type: ignore[arg-type]


@pytest.fixture
async def browser(dist: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(_settings(console_dir=dist, console_storage_origin=MOTO)):
        yield client


@pytest.fixture
async def unserved() -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(_settings()):
        yield client


def _assert_secure(response: httpx.Response) -> None:
    assert response.headers["content-security-policy"] == content_security_policy([MOTO])
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("path", ["/console/", "/console/index.html"])
async def test_the_console_is_its_index_html_revalidated_on_each_load(
    browser: httpx.AsyncClient, path: str
) -> None:
    response = await browser.get(path)

    assert response.status_code == 200
    assert response.text == INDEX
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-cache"
    _assert_secure(response)


@pytest.mark.parametrize(
    "route",
    ["/console/tasks", "/console/tasks/6f1c0d52-7c1e-4a83-9e55-0b0c6b1f4a07", "/console/x/"],
)
async def test_every_route_of_the_app_gets_index_html(
    browser: httpx.AsyncClient, route: str
) -> None:
    response = await browser.get(route)

    assert response.status_code == 200
    assert response.text == INDEX
    assert response.headers["cache-control"] == "no-cache"
    _assert_secure(response)


async def test_console_without_its_slash_redirects_to_it(browser: httpx.AsyncClient) -> None:
    response = await browser.get("/console", params={"tenant": "acme"})

    assert response.status_code == 301
    assert response.headers["location"] == "/console/?tenant=acme"
    _assert_secure(response)


async def test_hashed_assets_are_cached_for_a_year_as_immutable(
    browser: httpx.AsyncClient,
) -> None:
    script = await browser.get("/console/assets/index-Ab12Cd.js")
    style = await browser.get("/console/assets/index-Ef34Gh.css")

    assert script.status_code == 200
    assert script.text == SCRIPT
    assert script.headers["content-type"].split(";")[0] in {
        "text/javascript",
        "application/javascript",
    }
    assert script.headers["cache-control"] == IMMUTABLE == "public, max-age=31536000, immutable"
    assert style.headers["content-type"].startswith("text/css")
    assert style.headers["cache-control"] == IMMUTABLE
    _assert_secure(script)


async def test_other_files_of_the_build_are_served_and_revalidated(
    browser: httpx.AsyncClient,
) -> None:
    response = await browser.get("/console/favicon.svg")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert response.headers["cache-control"] == "no-cache"


async def test_an_unchanged_file_answers_304(browser: httpx.AsyncClient) -> None:
    first = await browser.get("/console/")

    again = await browser.get("/console/", headers={"If-None-Match": first.headers["etag"]})

    assert again.status_code == 304
    assert again.content == b""
    _assert_secure(again)


async def test_head_answers_headers_only(browser: httpx.AsyncClient) -> None:
    response = await browser.head("/console/assets/index-Ab12Cd.js")

    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["cache-control"] == IMMUTABLE


@pytest.mark.parametrize(
    "path", ["/console/assets/index-Missing.js", "/console/robots.txt", "/console/assets/"]
)
async def test_a_missing_file_is_404_not_the_app(browser: httpx.AsyncClient, path: str) -> None:
    # a missing script must not come back as HTML (the browser would run neither)
    response = await browser.get(path)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Not Found"
    _assert_secure(response)


@pytest.mark.parametrize(
    "raw_path",
    [
        b"/console/%2e%2e/secret.txt",
        b"/console/..%2fsecret.txt",
        b"/console/assets/%2e%2e/%2e%2e/secret.txt",
        b"/console/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        b"/console/.env",
        b"/console/%2eenv",
        b"/console/..%5csecret.txt",
    ],
)
async def test_nothing_outside_the_build_is_ever_served(
    browser: httpx.AsyncClient, raw_path: bytes
) -> None:
    # the raw path reaches the app as sent (httpx would otherwise remove the dot segments)
    request = browser.build_request("GET", "http://gateway/")
    request.url = request.url.copy_with(raw_path=raw_path)

    response = await browser.send(request)

    assert response.status_code == 404
    assert response.json()["detail"] == "No such file in the console."  # refused, not routed away
    assert "not for the console" not in response.text
    assert "SECRET" not in response.text
    assert "root:" not in response.text


async def test_without_a_console_dir_the_console_is_a_404_that_says_so(
    unserved: httpx.AsyncClient,
) -> None:
    for path in ("/console", "/console/", "/console/tasks", "/console/assets/index-Ab12Cd.js"):
        response = await unserved.get(path)

        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
        assert "RELAY_CONSOLE_DIR" in response.json()["detail"]


async def test_a_console_dir_without_a_build_is_a_404_that_says_so(tmp_path: Path) -> None:
    async for client in _client(_settings(console_dir=tmp_path / "dist")):
        response = await client.get("/console/tasks")

        assert response.status_code == 404
        assert "not built" in response.json()["detail"]


async def test_the_api_is_unchanged_and_needs_no_console(browser: httpx.AsyncClient) -> None:
    openapi = (await browser.get("/openapi.json")).json()

    assert not [path for path in openapi["paths"] if path.startswith("/console")]
    assert (await browser.get("/v1/tasks")).status_code == 401  # the console adds no way in


def test_the_csp_lists_the_storage_origins_for_images_and_reads() -> None:
    policy = content_security_policy(["https://a.s3.amazonaws.com", "http://127.0.0.1:5055"])

    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert (
        directives["img-src"]
        == "'self' data: blob: https://a.s3.amazonaws.com http://127.0.0.1:5055"
    )
    assert directives["connect-src"] == "'self' https://a.s3.amazonaws.com http://127.0.0.1:5055"
    assert directives["object-src"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["form-action"] == "'self'"
    assert "unsafe" not in policy


@pytest.mark.parametrize(
    "origin",
    [
        "ftp://a.example",
        "https://a.example/path",
        "https://a.example; script-src *",
        "https://user@a.example",
        "*",
        "https://*.example",
    ],
)
def test_a_storage_origin_that_is_not_one_is_refused(origin: str) -> None:
    with pytest.raises(ValidationError, match="not an origin"):
        _settings(console_storage_origin=origin)


def test_the_console_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RELAY_CONSOLE_DIR", str(tmp_path))
    monkeypatch.setenv(
        "RELAY_CONSOLE_STORAGE_ORIGIN", " http://127.0.0.1:5055  https://b.s3.amazonaws.com "
    )

    settings = GatewaySettings()

    assert settings.console_dir == tmp_path
    assert settings.console_storage_origins == (
        "http://127.0.0.1:5055",
        "https://b.s3.amazonaws.com",
    )


def test_an_empty_console_dir_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_CONSOLE_DIR", "")

    assert GatewaySettings().console_dir is None

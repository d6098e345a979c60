"""The Content Security Policy is enforced by default; Report-Only is an opt-in that needs a report URI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]

DIRECTIVES = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}

# Settings are read once at start-up, so the opt-in is tried in a fresh process with its environment.
_HEADERS_OF_LOGIN_PAGE = """
import django, json
django.setup()
from django.test import Client
response = Client().get("/accounts/login/")
print(json.dumps({k: v for k, v in response.headers.items() if k.startswith("Content-Security-Policy")}))
"""


def _directives(header: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in header.split(";") if part.strip())


def _headers_with(tmp_path, **env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CSP_")}
    environment.update(DJANGO_SETTINGS_MODULE="enrollment_site.settings", DATABASE_URL=f"sqlite:///{tmp_path / 'csp.sqlite3'}", **env)
    return subprocess.run(
        [sys.executable, "-c", _HEADERS_OF_LOGIN_PAGE], cwd=BASE_DIR, env=environment, capture_output=True, text=True, timeout=120
    )


@pytest.mark.django_db
def test_the_policy_is_enforced_by_default(client):
    response = client.get("/accounts/login/")

    assert "Content-Security-Policy-Report-Only" not in response.headers
    assert _directives(response.headers["Content-Security-Policy"]) == DIRECTIVES


def test_report_only_is_an_opt_in_with_a_report_uri(tmp_path):
    result = _headers_with(tmp_path, CSP_REPORT_ONLY="1", CSP_REPORT_URI="https://reports.example.com/csp")

    assert result.returncode == 0, result.stderr
    headers = json.loads(result.stdout)
    assert list(headers) == ["Content-Security-Policy-Report-Only"]
    assert _directives(headers["Content-Security-Policy-Report-Only"]) == {
        **DIRECTIVES, "report-uri": "https://reports.example.com/csp"
    }


def test_report_only_without_a_report_uri_refuses_to_start(tmp_path):
    result = _headers_with(tmp_path, CSP_REPORT_ONLY="1")

    assert result.returncode != 0
    assert "CSP_REPORT_ONLY=1 needs CSP_REPORT_URI" in result.stderr


def test_a_report_uri_alone_reports_violations_of_the_enforced_policy(tmp_path):
    result = _headers_with(tmp_path, CSP_REPORT_URI="https://reports.example.com/csp")

    assert result.returncode == 0, result.stderr
    headers = json.loads(result.stdout)
    assert list(headers) == ["Content-Security-Policy"]
    assert _directives(headers["Content-Security-Policy"])["report-uri"] == "https://reports.example.com/csp"

"""Security: keys on every write, keys never logged, limits, CORS, the container image."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from docker.utils.build import exclude_paths

from lede.eval.local_server import LEDE, lede_serve

ROOT = Path(__file__).resolve().parent.parent
KEY = "sec-key-0123456789abcdef-SECRET"
WRONG = "not-the-key-0123456789-GUESS"


@pytest.mark.model
@pytest.mark.server
def test_writes_refuse_missing_and_wrong_keys_and_keys_never_reach_the_logs(
    tmp_path: Path, sample_index_dir: Path
) -> None:
    log = tmp_path / "serve.log"
    slack_secret = "slack-signing-SECRET-0123456789"
    env = {"LEDE_API_KEYS": KEY, "LEDE_SLACK_SIGNING_SECRET": slack_secret}
    with lede_serve(sample_index_dir, env=env, log=log) as (base_url, _):
        writes = [
            ("POST", "/articles", {"id": "sec", "text": "A secure article."}),
            ("PUT", "/articles/sec", {"text": "A secure article."}),
            ("DELETE", "/articles/sec", None),
        ]
        for method, path, body in writes:
            for headers in ({}, {"Authorization": f"Bearer {WRONG}"}, {"Authorization": KEY}):
                response = httpx.request(
                    method, f"{base_url}{path}", json=body, headers=headers, timeout=60
                )
                assert response.status_code == 401, (method, headers, response.text)
                assert response.json()["error"]["code"] == "unauthorized"
                assert KEY not in response.text and WRONG not in response.text
        auth = {"Authorization": f"Bearer {KEY}"}
        created = httpx.post(f"{base_url}/articles", json=writes[0][2], headers=auth, timeout=60)
        assert created.status_code == 200
        assert httpx.delete(f"{base_url}/articles/sec", headers=auth, timeout=60).status_code == 200
        httpx.get(f"{base_url}/search", params={"query": "rates"}, headers=auth, timeout=60)
        httpx.get(f"{base_url}/nowhere", headers={"Authorization": f"Bearer {WRONG}"}, timeout=60)
    text = log.read_text()
    assert "POST /articles" in text  # the access log is there ...
    for secret in (KEY, WRONG, slack_secret):
        assert secret not in text  # ... and holds no key


@pytest.mark.model
@pytest.mark.server
def test_a_bad_key_setting_is_reported_without_echoing_it(sample_index_dir: Path) -> None:
    completed = subprocess.run(
        [LEDE, "serve", "--index", str(sample_index_dir)],
        env={**os.environ, "LEDE_API_KEYS": "tinyKEYvalue"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2
    assert "LEDE_API_KEYS" in completed.stderr and "tinyKEYvalue" not in completed.stderr


@pytest.mark.model
@pytest.mark.server
def test_cors_is_off_by_default_and_follows_the_setting(sample_index_dir: Path) -> None:
    preflight = {
        "Origin": "https://news.example.org",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    with lede_serve(sample_index_dir) as (base_url, _):
        response = httpx.options(f"{base_url}/search", headers=preflight, timeout=60)
        assert "access-control-allow-origin" not in response.headers
        simple = httpx.get(
            f"{base_url}/search", params={"query": "rates"}, headers={"Origin": preflight["Origin"]}
        )
        assert "access-control-allow-origin" not in simple.headers
    env = {"LEDE_CORS_ORIGINS": "https://news.example.org"}
    with lede_serve(sample_index_dir, env=env) as (base_url, _):
        allowed = httpx.options(f"{base_url}/search", headers=preflight, timeout=60)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://news.example.org"
        other = httpx.options(
            f"{base_url}/search", headers={**preflight, "Origin": "https://evil.example"}
        )
        assert other.headers.get("access-control-allow-origin") != "https://evil.example"


def test_dockerfile_runs_as_non_root_with_a_healthcheck_and_passes_hadolint() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert users and users[-1] not in {"root", "0", "0:0"}
    assert re.search(r"^HEALTHCHECK\s+.*CMD", dockerfile, flags=re.MULTILINE | re.DOTALL)
    hadolint = Path(sys.executable).parent / "hadolint"
    completed = subprocess.run([str(hadolint), str(ROOT / "Dockerfile")], capture_output=True)
    assert completed.returncode == 0, completed.stdout


def test_image_would_hold_no_dataset_or_secret() -> None:
    """The build context after .dockerignore (docker-py's own matcher), narrowed to what the
    Dockerfile COPYs: no datasets, indexes, results, keys or env files."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    context = set(exclude_paths(str(ROOT), patterns))
    copied_roots = [
        part
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ")
        for part in line.split()[1:-1]
        if not part.startswith("--")
    ]
    copied = {
        path
        for path in context
        if any(path == root or path.startswith(f"{root.rstrip('/')}/") for root in copied_roots)
    }
    assert copied, "the Dockerfile copies nothing?"
    forbidden = re.compile(
        r"(^|/)(\.env[^/]*|.*\.(pem|key|p12|sqlite[^/]*|faiss|npz)|id_rsa[^/]*|corpus\.jsonl|"
        r"qrels/.*|queries\.jsonl|\.lede/.*|eval/results/.*)$"
    )
    leaked = sorted(path for path in copied if forbidden.search(path))
    assert leaked == []
    # No data blobs; the answer model's trained adapters (scorer and reader) are the shipped
    # binaries, under 10 MB together.
    weights = {
        "service/answers/weights/weights.safetensors",
        "service/answers/weights/reader.safetensors",
    }
    assert weights <= copied
    assert sum((ROOT / path).stat().st_size for path in weights) < 10_000_000
    largest = max((ROOT / path).stat().st_size for path in copied - weights)
    assert largest < 1_000_000
    for secret_path in (".env", ".lede/eval-cache", ".venv/bin/python"):
        assert secret_path not in context

"""`ssehub token`, `publish` and `listen` against a real `ssehub serve`
speaking Mercure 1.0 only, and 0.x only: real processes, real sockets."""

from __future__ import annotations

import json

import jwt

from tests.support.helpers import free_port
from tests.support.processes import SECRET, connect, run_cli, spawn, stop

ISSUER = "https://issuer.example"
OWN = "the issuer's own key, long enough for HS256"  # --jwt-issuer-key
BOOKS = "https://example.com/books/:id"


def _wait_until_serving(port: int) -> None:
    connect(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").close()


def test_the_tools_against_a_hub_that_speaks_1_0_only() -> None:
    port = free_port()
    hub = f"http://127.0.0.1:{port}"
    resource = f"{hub}/.well-known/mercure"  # the default: this endpoint on the request's Host
    proc = spawn(
        "serve", "--port", str(port), "--store", "memory:", "--mercure-dialect", "1.0",
        "--jwt-key", SECRET, "--jwt-issuer", "https://shared.example",
        "--jwt-issuer-key", f"{ISSUER}={OWN}",
    )  # fmt: skip
    try:
        _wait_until_serving(port)
        mint = ["--jwt-key", OWN, "--jwt-issuer", ISSUER]
        token = run_cli("token", *mint, "--resource", resource,
                        "--publish-match-urlpattern", BOOKS, "--subject", "me")  # fmt: skip
        assert token.returncode == 0, token.stderr
        header = jwt.get_unverified_header(token.stdout.strip())
        claims = jwt.decode(token.stdout.strip(), OWN, algorithms=["HS256"], audience=resource)
        assert header["typ"] == "at+jwt"
        assert (claims["iss"], claims["sub"], claims["exp"] > claims["iat"]) == (ISSUER, "me", True)
        assert claims["authorization_details"] == [
            {
                "type": "https://mercure.rocks/authorization-detail",
                "actions": ["publish"],
                "topics": [{"match": BOOKS, "match_type": "urlpattern"}],
            }
        ]
        given = ["--token", token.stdout.strip()]
        first = run_cli("publish", "https://example.com/books/1", "one", "--hub", hub, *given)
        assert first.returncode == 0, first.stderr
        second = run_cli("publish", "https://example.com/books/2", "two", "--private",
                         "--hub", hub, *mint)  # fmt: skip
        assert second.returncode == 0, second.stderr
        denied = run_cli("publish", "https://example.com/authors/1", "x", "--hub", hub, *given)
        assert denied.returncode == 1
        assert "403 the access token does not allow publishing to" in denied.stderr
        reserved = run_cli("publish", "/.well-known/mercure/subscriptions/x", "forged",
                           "--hub", hub, *mint)  # fmt: skip
        assert reserved.returncode == 1
        assert "400 the topic '/.well-known/mercure/subscriptions/x' is in the hub's reserved" in (
            reserved.stderr
        )
        # a token signed with the shared key that claims the issuer with its own key
        forged = run_cli("publish", "https://example.com/books/3", "x", "--hub", hub,
                         "--jwt-key", SECRET, "--jwt-issuer", ISSUER)  # fmt: skip
        assert forged.returncode == 1
        assert "401 the access token's signature is not valid for its issuer" in forged.stderr
        shared = run_cli("publish", "https://example.com/books/3", "three", "--hub", hub,
                         "--jwt-key", SECRET, "--jwt-issuer", "https://shared.example")  # fmt: skip
        assert shared.returncode == 0, shared.stderr
        old = run_cli("publish", "https://example.com/books/4", "x", "--hub", hub,
                      "--jwt-key", SECRET)  # fmt: skip
        assert old.returncode == 1
        assert "401 the access token's typ must be at+jwt" in old.stderr
        expected = [
            (first.stdout.strip(), "one"),
            (second.stdout.strip(), "two"),  # private: reaches 1.0 tokens that allow it
            (shared.stdout.strip(), "three"),
        ]
        common = ["--hub", hub, "--last-event-id", "earliest", "--count", "3", "--format", "json"]
        reader = run_cli("token", *mint, "--resource", resource, "--subscribe-match", "*")
        for how in (
            ["--match-urlpattern", BOOKS, *mint],
            [
                "--match-urlpattern",
                "/books/:id",
                "--match",
                "https://example.com/books/1",
                "--match",
                "https://example.com/books/3",
                "--match",
                "https://example.com/books/2",
                "--token",
                reader.stdout.strip(),
            ],
        ):
            listen = run_cli("listen", *common, *how)
            assert listen.returncode == 0, listen.stderr
            got = [json.loads(line) for line in listen.stdout.splitlines()]
            assert [(e["id"], e["data"]) for e in got] == expected
        resumed = run_cli("listen", "--hub", hub, "--match", "*", "--count", "1",
                          "--last-event-id", first.stdout.strip(), *mint)  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr
        assert resumed.stdout == "two\n"  # after `first`, private `two` is next
        topic = run_cli("listen", "--hub", hub, "--topic", "t", "--count", "1")
        assert topic.returncode == 1
        assert "(status 400): 'this hub speaks Mercure 1.0 only" in topic.stderr, topic.stderr
    finally:
        code, out, err = stop(proc)
    assert code == 0, err
    assert f"Mercure 1.0 access tokens from: {ISSUER} (HS256, its own key); " in out
    assert "https://shared.example (the JWT keys)" in out


def test_the_tools_against_a_hub_that_speaks_0_x_only() -> None:
    port = free_port()
    hub = f"http://127.0.0.1:{port}"
    proc = spawn("serve", "--port", str(port), "--store", "memory:", "--mercure-dialect", "0.x",
                 "--jwt-key", SECRET)  # fmt: skip
    try:
        _wait_until_serving(port)
        published = run_cli("publish", "t", "zero", "--private", "--hub", hub, "--jwt-key", SECRET)
        assert published.returncode == 0, published.stderr
        token = run_cli("token", "--jwt-key", SECRET, "--subscribe", "*").stdout.strip()
        assert "mercure" in jwt.decode(token, SECRET, algorithms=["HS256"])  # 0.x: the default
        listen = run_cli("listen", "--hub", hub, "--topic", "t", "--last-event-id", "earliest",
                         "--count", "1", "--token", token)  # fmt: skip
        assert (listen.returncode, listen.stdout) == (0, "zero\n"), listen.stderr
        v1 = run_cli("publish", "t", "x", "--hub", hub, "--jwt-key", SECRET,
                     "--jwt-issuer", ISSUER)  # fmt: skip
        assert v1.returncode == 1
        assert "400 this hub speaks Mercure 0.x only" in v1.stderr
        match = run_cli("listen", "--hub", hub, "--match", "t", "--count", "1")
        assert match.returncode == 1
        assert "(status 400): 'this hub speaks Mercure 0.x only" in match.stderr, match.stderr
    finally:
        code, _, err = stop(proc)
    assert code == 0, err


def test_the_tools_refuse_dialects_that_do_not_fit_in_flag_names() -> None:
    cases = {
        ("listen", "--hub", "http://127.0.0.1:1", "--match", "t", "--jwt-key", SECRET):
            "a Mercure 1.0 subscription (match) takes 1.0 access tokens: give --jwt-issuer",
        ("listen", "--hub", "http://127.0.0.1:1", "--topic", "t", "--match", "t"):
            "give --topic (Mercure 0.x) or --match/--match-urlpattern (1.0)",
        ("listen", "--hub", "http://127.0.0.1:1", "--topic", "t", "--jwt-key", SECRET,
         "--jwt-issuer", ISSUER): "--jwt-issuer mints Mercure 1.0 access tokens: subscribe with",
        ("publish", "t", "x", "--jwt-issuer", ISSUER): "--jwt-issuer goes with --jwt-key",
        ("publish", "t", "x", "--jwt-key", SECRET, "--resource", "https://h"):
            "--resource goes with --jwt-issuer",
        ("token", "--jwt-key", SECRET, "--subscribe-match", "t"):
            "--subscribe-match is for Mercure 1.0 access tokens: give --jwt-issuer",
        ("token", "--jwt-key", SECRET, "--jwt-issuer", ISSUER, "--publish", "t"):
            "--publish takes 0.x selectors: a 1.0 access token (--jwt-issuer) takes",
        ("token", "--jwt-key", SECRET, "--jwt-issuer", ISSUER):
            "--jwt-issuer: a 1.0 access token needs --resource URL",
        ("token", "--jwt-key", SECRET, "--jwt-issuer", ISSUER, "--resource", "https://h",
         "--ttl", "0"): "--ttl: a Mercure 1.0 access token must expire",
        ("serve", "--jwt-issuer-key", "https://a"): "--jwt-issuer-key: expected ISSUER=KEY",
        ("serve", "--jwt-issuer-algorithm", "https://a=RS256"):
            "--jwt-issuer-algorithm: https://a has no --jwt-issuer-key",
        ("serve", "--jwt-issuer-key", "https://a=secret", "--jwt-issuer-algorithm",
         "https://a=RS256"): "--jwt-issuer-key: the key of https://a does not fit RS256",
    }  # fmt: skip
    for argv, message in cases.items():
        done = run_cli(*argv)
        assert done.returncode == 2, (argv, done.stderr)
        assert len(done.stderr.splitlines()) == 1, done.stderr
        assert done.stderr.startswith(f"ssehub {argv[0]}: {message}"), done.stderr

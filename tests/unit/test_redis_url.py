"""Redis store URLs (backends/_redis_url.py): the Sentinel form, ssehub's
parameters, and a one-line refusal naming what is wrong in a bad one."""

from __future__ import annotations

import pytest

from ssehub.backends import RedisBackend, backend_from_url
from ssehub.backends._redis_url import RedisURL, parse_redis_url, redact


def test_sentinel_url_with_every_part() -> None:
    parsed = parse_redis_url(
        "redis+sentinel://app:s%40cret@10.0.0.1,10.0.0.2:26380,[::1]:26381/mymaster/3"
        "?prefix=orders:&wait=2&wait_timeout_ms=300&sentinel_password=sp"
    )
    assert parsed == RedisURL(
        sentinels=(("10.0.0.1", 26379), ("10.0.0.2", 26380), ("::1", 26381)),
        service="mymaster",
        db=3,
        username="app",
        password="s@cret",
        sentinel_password="sp",
        prefix="orders:",
        wait=2,
        wait_timeout_ms=300,
    )


def test_sentinel_url_defaults() -> None:
    parsed = parse_redis_url("redis+sentinel://a,b,c/mymaster")
    assert parsed.sentinels == (("a", 26379), ("b", 26379), ("c", 26379))
    assert (parsed.db, parsed.password, parsed.prefix, parsed.wait) == (0, None, "ssehub:", 0)
    assert parsed.wait_timeout_ms == 1000


def test_one_server_url_keeps_what_redis_py_reads_and_takes_ours_out() -> None:
    parsed = parse_redis_url("redis://:pw@127.0.0.1:6380/2?prefix=p:&wait=1")
    assert parsed.url == "redis://:pw@127.0.0.1:6380/2"
    assert (parsed.prefix, parsed.wait, parsed.sentinels) == ("p:", 1, ())


def test_unix_socket_url() -> None:
    parsed = parse_redis_url("unix:///run/redis.sock?db=2&prefix=u:")
    assert (parsed.url, parsed.prefix) == ("unix:///run/redis.sock?db=2", "u:")
    assert isinstance(backend_from_url("unix:///run/redis.sock"), RedisBackend)


def test_backend_from_url_takes_every_setting_from_the_url() -> None:
    backend = backend_from_url("redis+sentinel://h1,h2,h3/svc/1?wait=1&wait_timeout_ms=250")
    assert isinstance(backend, RedisBackend)
    assert (backend.wait, backend.wait_timeout, backend.prefix) == (1, 0.25, "ssehub:")


def test_keyword_arguments_win_over_the_url() -> None:
    backend = RedisBackend("redis://h/0?prefix=a:&wait=2", prefix="b:", wait=0, wait_timeout=2)
    assert (backend.prefix, backend.wait, backend.wait_timeout) == ("b:", 0, 2.0)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis+sentinel:///svc/0", "names no Sentinel"),
        ("redis+sentinel://h1,h2", "names no service"),
        ("redis+sentinel://h1,h2/", "names no service"),
        ("redis+sentinel://h1,,h2/svc", "an empty Sentinel address"),
        ("redis+sentinel://h1:port/svc", "the port of 'h1:port' is not a number"),
        ("redis+sentinel://h1:0/svc", "is not a number 1-65535"),
        ("redis+sentinel://::1/svc", "write an IPv6 address as [addr]:port"),
        ("redis+sentinel://[::1/svc", "bad IPv6 address"),
        ("redis+sentinel://h/svc/zero", "the database must be a number, not 'zero'"),
        ("redis+sentinel://h/svc/0/extra", "the path must be /SERVICE or /SERVICE/DB"),
        ("redis+sentinel://secret@h/svc", "write the password as :PASSWORD@"),
        ("redis+sentinel://h/svc?db=1", "unknown parameter 'db'"),
        ("redis://h/0?socket_timeout=1", "unknown parameter 'socket_timeout'"),
        ("redis://h/0?wait=1&wait=2", "parameter 'wait' given twice"),
        ("redis://h/0?wait=one", "wait= must be a whole number, not 'one'"),
        ("redis://h/0?wait=-1", "wait= must be a whole number"),
        ("redis://h/0?wait_timeout_ms=0", "wait_timeout_ms= must be >= 1"),
        ("redis://h/0?prefix=", "prefix= must not be empty"),
        ("redis://h/0?prefix", "the query is not name=value"),
        ("redis://h/0#x", "fragment"),
        ("redis:///0", "names no host"),
        ("redis://h:99999/0", "the port is not a number"),
        ("redis://h/db0", "the database must be a number, not 'db0'"),
    ],
)
def test_a_malformed_url_is_refused_naming_the_problem(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match="store URL .*" + reason.replace("[", r"\[")) as caught:
        backend_from_url(url)
    assert "\n" not in str(caught.value)


def test_refusals_do_not_show_the_password() -> None:
    with pytest.raises(ValueError, match="unknown parameter 'nope'") as caught:
        backend_from_url("redis+sentinel://app:hunter2@h1/svc?nope=1")
    assert "hunter2" not in str(caught.value)
    assert "app:***@h1" in str(caught.value)
    assert redact("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert redact("redis://h:1/0") == "redis://h:1/0"


def test_unknown_scheme_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"redis\+sentinel://.* or redis\+cluster://"):
        backend_from_url("redis+shard://h1,h2/0")
    with pytest.raises(ValueError, match="must be redis://, rediss://, unix://, redis"):
        RedisBackend("http://h/0")


def test_backend_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="wait must be an int >= 0"):
        RedisBackend("redis://h/0", wait=-1)
    with pytest.raises(ValueError, match="wait_timeout must be > 0"):
        RedisBackend("redis://h/0", wait_timeout=0)
    with pytest.raises(ValueError, match="max_connections must be an int >= 1"):
        RedisBackend("redis://h/0", max_connections=0)


def test_cluster_url_names_its_nodes_and_takes_a_hash_tagged_prefix() -> None:
    parsed = parse_redis_url("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2,[::1]:7002")
    assert parsed.cluster == (("10.0.0.1", 7000), ("10.0.0.2", 6379), ("::1", 7002))
    assert (parsed.password, parsed.prefix, parsed.url, parsed.sentinels) == (
        "pw", "{ssehub}:", "", ()
    )  # fmt: skip
    assert parse_redis_url("redis+cluster://h?prefix={orders}:").prefix == "{orders}:"
    assert RedisBackend("redis+cluster://h").prefix == "{ssehub}:"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis+cluster://h?prefix=ssehub:", "needs a prefix= with a hash tag"),
        ("redis+cluster://h?prefix={}:", "needs a prefix= with a hash tag"),
        ("redis+cluster://h/0", "Redis Cluster has no databases"),
        ("redis+cluster://h?wait=1", "wait= is not supported with Redis Cluster"),
        ("redis+cluster://h?db=1", "unknown parameter 'db'"),
        ("redis+cluster:///", "names no node"),
        ("redis+cluster://h,,i", "an empty node address"),
    ],
)
def test_a_malformed_cluster_url_is_refused_naming_the_problem(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_redis_url(url)


def test_a_cluster_prefix_given_as_an_argument_needs_a_hash_tag_too() -> None:
    with pytest.raises(ValueError, match="hash tag"):
        RedisBackend("redis+cluster://h", prefix="plain:")

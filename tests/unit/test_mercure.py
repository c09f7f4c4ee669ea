"""The sans-IO Mercure layer: requests in, decisions out, no sockets."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from ssehub.hub import Hub, Resume
from ssehub.mercure import (
    Mercure,
    MercureConfig,
    Publish,
    Request,
    Response,
    Subscribe,
)

FORM = {b"content-type": b"application/x-www-form-urlencoded"}


def decide(config: MercureConfig, request: Request) -> object:
    return Mercure(config, Hub()).decide(request)


def test_a_subscription_decision_carries_topics_resume_point_and_headers() -> None:
    config = MercureConfig(cors_origins=("https://app.example",))
    request = Request(
        "GET",
        "/.well-known/mercure",
        b"topic=a&topic=b%2Fc&lastEventID=x",
        {b"origin": b"https://app.example"},
    )
    decision = decide(config, request)
    assert isinstance(decision, Subscribe)
    assert decision.topics == ("a", "b/c")
    assert decision.last_event_id == "x"
    headers = dict(decision.headers(Resume("newest", gap=False, replayed=0)))
    assert headers["Last-Event-ID"] == "x"  # the event before the first one sent
    assert headers["Access-Control-Allow-Origin"] == "https://app.example"
    head = decision.head(Resume("newest", gap=True, replayed=0))
    assert head.startswith(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
    assert b"Last-Event-ID: earliest\r\nSSEHub-Gap: 1\r\n" in head
    assert head.endswith(b"\r\n\r\n:\n\n")


def test_subscribers_that_ask_no_resume_and_no_cors_share_one_response_head() -> None:
    first, second = (
        decide(MercureConfig(), Request("GET", "/.well-known/mercure", f"topic={t}".encode()))
        for t in ("a", "b")
    )
    assert isinstance(first, Subscribe)
    assert isinstance(second, Subscribe)
    resume = Resume("earliest", gap=False, replayed=0)
    head = first.head(resume)
    assert head is second.head(resume)  # one bytes object, not built per connect
    assert head == (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        b"Cache-Control: private, no-cache, no-store, must-revalidate, max-age=0\r\n"
        b"X-Accel-Buffering: no\r\nConnection: close\r\n\r\n:\n\n"
    )


def test_query_fields_with_nothing_to_unquote_are_decoded_and_still_refused_if_not_utf8() -> None:
    config = MercureConfig()
    decision = decide(config, Request("GET", "/.well-known/mercure", b"topic=a/b&&lastEventID=x"))
    assert isinstance(decision, Subscribe)
    assert (decision.topics, decision.last_event_id) == (("a/b",), "x")
    for query, reason in ((b"topic=\xff", "'topic' is not"), (b"t\xffpic=a", "name 't")):
        refused = decide(config, Request("GET", "/.well-known/mercure", query))
        assert isinstance(refused, Response)
        assert refused.status == 400
        assert reason in refused.body.decode(), refused.body


def test_refusals_are_responses_with_a_status_and_one_line() -> None:
    config = MercureConfig(max_topics=1)
    cases = [
        (Request("GET", "/.well-known/mercure", b""), 400, "missing 'topic' query parameter"),
        (Request("GET", "/.well-known/mercure", b"topic=a&topic=b"), 400, "more than 1 topics"),
        (Request("GET", "/.well-known/mercure", b"topic=%FF"), 400, "'topic' is not valid UTF-8"),
        (Request("DELETE", "/.well-known/mercure"), 405, "method DELETE not allowed"),
        (Request("GET", "/elsewhere"), 404, "not found: /elsewhere"),
        (Request("POST", "/.well-known/mercure", b"", FORM, b"topic=a"), 403, "--jwt-key"),
    ]
    for request, status, reason in cases:
        decision = decide(config, request)
        assert isinstance(decision, Response), request
        assert decision.status == status
        assert reason in decision.body.decode()
        assert decision.body.endswith(b"\n")
        assert decision.body.count(b"\n") == 1


def test_a_publish_decision_and_its_fields() -> None:
    config = MercureConfig(anonymous_publish=True, subscriptions=True)
    body = b"topic=a&topic=b&data=caf%C3%A9&id=&type=&retry=10&private=on"
    decision = decide(config, Request("POST", "/.well-known/mercure", b"", FORM, body))
    assert decision == Publish(("a", "b"), "café", "message", None, 10, True, ())
    listing = decide(config, Request("GET", "/.well-known/mercure/subscriptions/a"))
    assert isinstance(listing, Response)  # no subscriber key: the API is refused
    assert listing.status == 403


def test_seconds_left_is_the_sooner_of_expiry_and_maximum() -> None:
    base = Subscribe(("a",), None, frozenset(), None, ())
    assert base.seconds_left(100.0) is None
    assert Subscribe(("a",), None, frozenset(), None, (), 130.0).seconds_left(100.0) == 30.0
    both = Subscribe(("a",), None, frozenset(), None, (), 130.0, 10.0)
    assert both.seconds_left(100.0) == 10.0


def test_from_environ_reads_the_serve_variables_and_names_a_bad_one() -> None:
    config = MercureConfig.from_environ(
        {
            "SSEHUB_JWT_KEY": "k" * 32,
            "SSEHUB_ANONYMOUS": "1",
            "SSEHUB_CORS_ORIGIN": "https://a.example, https://b.example",
            "SSEHUB_MAX_TOPICS": "3",
        }
    )
    assert config.auth.publisher_key == config.auth.subscriber_key == "k" * 32
    assert config.anonymous is True
    assert config.anonymous_publish is False
    assert config.cors_origins == ("https://a.example", "https://b.example")
    assert config.max_topics == 3
    with pytest.raises(
        ValueError, match=r"^SSEHUB_ANONYMOUS: expected true or false, not 'maybe'$"
    ):
        MercureConfig.from_environ({"SSEHUB_ANONYMOUS": "maybe"})
    with pytest.raises(ValueError, match=r"^SSEHUB_MAX_TOPICS: expected an integer"):
        MercureConfig.from_environ({"SSEHUB_MAX_TOPICS": "many"})


def test_a_refused_origin_is_due_once_a_minute_in_bounded_memory() -> None:
    from ssehub.mercure._cors import RefusalLog

    now = [0.0]
    refusals = RefusalLog(every=60.0, limit=3, clock=lambda: now[0])
    assert refusals.due("null")
    assert not refusals.due("null")  # the same origin, within the minute
    now[0] = 30.0
    assert refusals.due("https://a.example")
    now[0] = 59.0
    assert not refusals.due("null")
    now[0] = 60.0
    assert refusals.due("null")  # a minute later: once more
    assert refusals.due("https://b.example")
    assert not refusals.due("https://c.example")  # three remembered: quiet, not unbounded
    assert len(refusals._seen) == 3
    now[0] = 200.0
    assert refusals.due("https://c.example")  # the old ones aged out
    assert len(refusals._seen) == 1


def test_self_in_publish_origins_is_the_hub_own_literal_host_only() -> None:
    from ssehub.mercure._cors import origin_allowed

    mine = ("self",)
    assert origin_allowed(mine, "http://127.0.0.1:8000", None, "127.0.0.1:8000")
    assert origin_allowed(mine, "http://localhost:8000", None, "localhost:8000")
    assert origin_allowed(mine, "http://[::1]:8000", None, "[::1]:8000")
    assert origin_allowed(mine, None, "http://192.168.1.5:8000/page", "192.168.1.5:8000")
    assert not origin_allowed(mine, "http://127.0.0.1:9000", None, "127.0.0.1:8000")
    assert not origin_allowed(mine, "http://evil.example:8000", None, "evil.example:8000")
    assert not origin_allowed(mine, "null", None, "null")
    assert not origin_allowed(mine, "http://127.0.0.1:8000", None, None)
    assert not origin_allowed((), "http://127.0.0.1:8000", None, "127.0.0.1:8000")


def test_idempotency_key_gives_the_event_id() -> None:
    config = MercureConfig(anonymous_publish=True)

    def publish(body: bytes, key: bytes | None, *more: tuple[bytes, bytes]) -> object:
        pairs = [*FORM.items(), *more] + ([(b"idempotency-key", key)] if key is not None else [])
        request = Request.from_pairs("POST", "/.well-known/mercure", b"", pairs, body)
        return decide(config, request)

    for key, want in [(b'"8e03978e-40d5"', "8e03978e-40d5"), (b"bare-key", "bare-key"),
                      (b'"say \\"hi\\""', 'say "hi"')]:  # fmt: skip
        decision = publish(b"topic=a&data=x", key)
        assert isinstance(decision, Publish), key
        assert decision.id == want
    same = publish(b"topic=a&id=k1", b'"k1"')
    assert isinstance(same, Publish)
    assert same.id == "k1"
    plain = publish(b"topic=a&id=k1", None)
    assert isinstance(plain, Publish)
    assert plain.id == "k1"
    refusals = [
        (
            publish(b"topic=a&id=k1", b'"k2"'),
            "the 'id' field and the Idempotency-Key header differ",
        ),
        (publish(b"topic=a", b'""'), "Idempotency-Key is empty"),
        (publish(b"topic=a", b'"a\x00b"'), "must not contain CR, LF or NUL"),
        (publish(b"topic=a", b'"' + b"k" * 1025 + b'"'), "longer than 1024 characters"),
        (publish(b"topic=a&id=" + b"k" * 1025, None), "'id' is longer than 1024 characters"),
        (publish(b"topic=a", b'"open'), "not closed"),
        (publish(b"topic=a", b'"a" b'), "text after the quoted string"),
        (publish(b"topic=a", b"k1", (b"idempotency-key", b"k2")), "more than once"),
    ]
    for decision, reason in refusals:
        assert isinstance(decision, Response), reason
        assert decision.status == 400, reason
        assert reason in decision.body.decode(), decision.body


@pytest.mark.parametrize("cls", [Publish, Response])
def test_hand_written_inits_take_the_fields_as_the_dataclass_would(cls: type) -> None:
    """`Publish` and `Response` set their slots by hand (`_slots.py`): the
    same parameters, order and defaults as their fields, and every field set."""
    params = list(inspect.signature(cls).parameters.values())
    fields = dataclasses.fields(cls)
    assert [p.name for p in params] == [f.name for f in fields]
    assert [p.default for p in params] == [
        inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default for f in fields
    ]
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params)
    values = [f"v{i}" for i in range(len(fields))]
    made = cls(*values)
    assert [getattr(made, f.name) for f in fields] == values
    assert made == cls(**{f.name: v for f, v in zip(fields, values, strict=True)})
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(made, fields[1].name, "x")

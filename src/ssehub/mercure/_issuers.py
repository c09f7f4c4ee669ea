"""Keys bound to their issuer (Mercure 1.0 draft, "Token Validation": "each
trusted key MUST be associated with the issuer identifier it belongs to";
a token is verified with the keys of its own `iss` only, never a pooled set).

An issuer gets its own key(s) and algorithm allowlist with `IssuerKey`
(`--jwt-issuer-key ISSUER=KEY`, `--jwt-issuer-algorithm ISSUER=ALG`); the
issuers of `MercureConfig.issuers` (`--jwt-issuer`) share the hub's JWT keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ._auth import ALGORITHMS, _jwt

__all__ = ("IssuerKey", "Trust", "Verifier", "issuer_keys", "trust")

Verifier = tuple[str, tuple[str, ...]]
"""A trusted key and the algorithms it may verify."""
Trust = Mapping[str, tuple[Verifier, ...]]
"""Each trusted issuer (its exact `iss`) and its keys."""


@dataclass(frozen=True, slots=True)
class IssuerKey:
    """One key of a trusted 1.0 token issuer: tokens whose `iss` is exactly
    `issuer` are verified with this key (an HMAC secret or a PEM public
    key) and one of `algorithms` only, for publishing and subscribing. An
    issuer may have several (key rotation): a token needs to fit one."""

    issuer: str
    key: str
    algorithms: tuple[str, ...] = ("HS256",)

    def __post_init__(self) -> None:
        if not isinstance(self.issuer, str) or not self.issuer or "=" in self.issuer:
            raise ValueError(f"IssuerKey.issuer must be an issuer identifier, not {self.issuer!r}")
        if not isinstance(self.key, str) or not self.key.strip():
            raise ValueError(f"IssuerKey.key of {self.issuer} must not be empty")
        algorithms = self.algorithms
        if not isinstance(algorithms, tuple) or not algorithms:
            raise ValueError(f"IssuerKey.algorithms of {self.issuer} must be a non-empty tuple")
        for algorithm in algorithms:
            if algorithm not in ALGORITHMS:
                raise ValueError(
                    f"IssuerKey.algorithms of {self.issuer}: {algorithm!r} is not one of "
                    f"{', '.join(ALGORITHMS)}"
                )
            if not _fits(self.key, algorithm):
                kind = "an HMAC secret" if algorithm.startswith("HS") else "a PEM public key"
                raise ValueError(
                    f"IssuerKey.key of {self.issuer} does not fit {algorithm}, which needs {kind}"
                )


def _fits(key: str, algorithm: str) -> bool:
    jwt = _jwt()  # fail at start, not at the first request, if PyJWT is missing
    try:
        jwt.get_algorithm_by_name(algorithm).prepare_key(key)
    except Exception:
        return False
    return True


def trust(
    issuers: Sequence[str], shared: str | None, algorithm: str, own: Sequence[IssuerKey]
) -> dict[str, tuple[Verifier, ...]]:
    """Who is trusted, with which keys: each issuer with its own keys
    (`own`), and the `issuers` without any with the `shared` key (none
    without one) and `algorithm`."""
    table: dict[str, tuple[Verifier, ...]] = {}
    for entry in own:
        table[entry.issuer] = (*table.get(entry.issuer, ()), (entry.key, entry.algorithms))
    if shared is not None:
        for issuer in issuers:
            table.setdefault(issuer, ((shared, (algorithm,)),))
    return table


def issuer_keys(
    keys: Sequence[str],
    algorithms: Sequence[str],
    default: str,
    *,
    read: Callable[[str], str],
    names: tuple[str, str] = ("--jwt-issuer-key", "--jwt-issuer-algorithm"),
) -> tuple[IssuerKey, ...]:
    """`IssuerKey`s from `ISSUER=KEY` entries (`read` turns a KEY, maybe
    `@FILE`, into the key) and `ISSUER=ALG` entries (each issuer's
    allowlist; `default` for an issuer without one). An issuer's key takes
    the algorithms of its allowlist that fit it. Raises `ValueError` naming
    the option (`names`), never showing a key."""
    key_name, algorithm_name = names
    allowed: dict[str, list[str]] = {}
    for entry in algorithms:
        issuer, sep, algorithm = (s.strip() for s in entry.partition("="))
        if not sep or not issuer or not algorithm:
            raise ValueError(f"{algorithm_name}: expected ISSUER=ALGORITHM, not {entry!r}")
        if algorithm not in ALGORITHMS:
            raise ValueError(
                f"{algorithm_name}: {algorithm!r} is not one of {', '.join(ALGORITHMS)}"
            )
        allowed.setdefault(issuer, []).append(algorithm)
    found: list[IssuerKey] = []
    for entry in keys:
        issuer, sep, raw = entry.partition("=")
        issuer = issuer.strip()
        if not sep or not issuer or not raw.strip():
            what = f"no key for {issuer[:80]!r}" if sep and issuer else "no ISSUER= before it"
            raise ValueError(f"{key_name}: expected ISSUER=KEY (or ISSUER=@FILE): {what}")
        key = read(raw.strip() if raw.strip().startswith("@") else raw)
        wanted = tuple(dict.fromkeys(allowed.get(issuer, [default])))
        fitting = tuple(a for a in wanted if _fits(key, a))
        if not fitting:
            kind = "an HMAC secret" if wanted[0].startswith("HS") else "a PEM public key"
            raise ValueError(
                f"{key_name}: the key of {issuer} does not fit {', '.join(wanted)} (which needs "
                f"{kind}; give its algorithm with {algorithm_name} {issuer}=ALG)"
            )
        found.append(IssuerKey(issuer, key, fitting))
    orphans = sorted(set(allowed) - {k.issuer for k in found})
    if orphans:
        raise ValueError(f"{algorithm_name}: {orphans[0]} has no {key_name}")
    return tuple(found)

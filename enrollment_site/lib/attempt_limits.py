"""Limits on failed attempts at guessing a secret (a code, an enrollment key),
counted per user and per client address in fixed windows in the cache.

An attempt is counted *before* it is evaluated, with the cache's atomic
``incr``, and refused when the count passes the limit: N attempts arriving at
once each get their own number, so no more than the limit of them are ever
evaluated in one window. (Checking first and counting after a failure lets every
concurrent attempt pass the check before any of them is counted.) Successes and
other attempts that do not count (a refused one included) give their count back
with ``decr`` once their outcome is known; while one is in flight it holds a
slot, so a guesser racing their own right answer is at worst refused early,
never let past the limit.

django-ratelimit counts atomically too, but cannot give a count back, which
"successes do not count" needs; the counters here are a few lines on Django's
cache (Redis ``INCR``/``DECRBY`` in production; locmem's are locked per process).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")
# Counters outlive their window by a little so a give-back at its very end still finds them.
_EXPIRY_FUDGE = 5


def parse_rate(rate: str) -> tuple[int, int]:
    """``"10/10m"`` → (10 attempts, 600 seconds); the django-ratelimit notation."""
    match = _RATE.match(rate)
    if match is None:
        raise ValueError(f"Not a rate: {rate!r} (expected e.g. 10/10m)")
    count, multiple, unit = match.groups()
    return int(count), int(multiple or 1) * _PERIODS[unit]


@lru_cache(maxsize=8)
def _trusted_networks(networks: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    try:
        return tuple(ipaddress.ip_network(network.strip(), strict=False) for network in networks if network.strip())
    except ValueError as exc:
        raise ImproperlyConfigured(f"TRUSTED_PROXIES: {exc}") from None


def _parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address as a proxy writes it into X-Forwarded-For, with or without a
    port (``198.51.100.7``, ``198.51.100.7:5123``, ``[2001:db8::1]:5123``)."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def client_address(request: HttpRequest) -> str:
    """The address of whoever sent ``request``, the one place every limit per
    address (ours and allauth's) asks.

    By default the socket's peer (``REMOTE_ADDR``) and nothing else: anyone can
    send an X-Forwarded-For header, so believing it would let a guesser pick a
    fresh address per request. Behind proxies of our own that peer is the proxy,
    so everyone would share one address and one set of limits; then the hops the
    proxies appended to X-Forwarded-For are read from the right, never further
    than the proxies we trust:

    - ``TRUSTED_PROXIES`` (networks): hops inside them are ours and skipped; the
      first hop outside them is the client. A peer outside them is the client
      itself, whatever its header says.
    - else ``TRUSTED_PROXY_COUNT`` (n): the request came through n proxies, the
      last of them the peer; the client is the n-th hop from the right of the
      header. For when the proxies' addresses are not fixed (containers); the
      site must then be reachable only through them.

    Entries left of the client's are whatever the client sent and are never read."""
    peer = request.META.get("REMOTE_ADDR") or "unknown"
    networks = _trusted_networks(tuple(getattr(settings, "TRUSTED_PROXIES", ()) or ()))
    count = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0)
    if not networks and count <= 0:
        return peer
    forwarded = [hop for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    hops = [*forwarded, peer]  # the nearest last
    if networks:
        nearest_ours = None
        for hop in reversed(hops):
            address = _parse_address(hop)
            if address is None:
                break  # our proxies write addresses; this one is nobody's we trust
            if not any(address in network for network in networks):
                return str(address)
            nearest_ours = address
        # Every hop is ours (a request from inside), or one is no address: the
        # farthest proxy of ours on the way is all that can be believed.
        return str(nearest_ours) if nearest_ours is not None else peer
    if len(hops) <= count:
        # Fewer hops than proxies: it did not come through all of them (an internal
        # check); the farthest hop recorded is the best there is.
        hop = hops[0]
    else:
        hop = hops[-(count + 1)]
    address = _parse_address(hop)
    return str(address) if address is not None else peer


def _address_counted(request: HttpRequest) -> str:
    # An IPv6 host is usually given a whole /64 and may use any address in it:
    # count the /64, as allauth does for its limits, or each guess could come from a new address.
    text = client_address(request)
    address = _parse_address(text)
    if address is None or address.version == 4:
        return text
    return str(ipaddress.ip_network(f"{address}/64", strict=False))


_KEYS: dict[str, Callable[[HttpRequest], str]] = {
    "user": lambda request: str(request.user.pk),
    "ip": _address_counted,
}


def _counter_key(
    request: HttpRequest, group: str, key_name: str, period: int, window_start: int, keys: Mapping[str, str] | None
) -> str:
    text = keys[key_name] if keys and key_name in keys else _KEYS[key_name](request)
    value = hashlib.sha256(text.encode()).hexdigest()[:32]
    return f"attempts:{group}:{key_name}:{period}:{value}:{window_start}"


@dataclass
class Attempt:
    """One counted attempt. ``wait`` is None when it may go ahead, else the
    seconds until it may be tried again (it was refused and counts nothing)."""

    wait: int | None = None
    _counted: list[str] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return self.wait is not None

    def give_back(self) -> None:
        """The attempt does not count (it succeeded, or failed for a reason that
        reveals nothing about the secret): undo its counts. Idempotent."""
        for key in self._counted:
            try:
                cache.decr(key)
            except ValueError:  # the window ended meanwhile; nothing left to give back to
                pass
        self._counted = []


def attempt_count(
    request: HttpRequest, *, group: str, rates: list[tuple[str, str]], keys: Mapping[str, str] | None = None
) -> Attempt:
    """Count an attempt at ``group`` against every (key, rate) in ``rates``
    (key ``"user"`` or ``"ip"``, or any name given a value in ``keys``, e.g.
    the account a login names), before it is evaluated.

    When any count passes its limit, the attempt is refused: its counts are
    given back and ``wait`` says for how long (the longest window left among
    the limits passed). Otherwise the caller evaluates it and calls
    ``give_back()`` unless it failed in a way that counts."""
    now = int(time.time())
    attempt = Attempt()
    waits = []
    for key_name, rate in rates:
        limit, period = parse_rate(rate)
        window_start = now - now % period
        key = _counter_key(request, group, key_name, period, window_start, keys)
        # add() is a no-op when the counter exists; incr() is then atomic.
        cache.add(key, 0, period + _EXPIRY_FUDGE)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr: start it again
            cache.add(key, 0, period + _EXPIRY_FUDGE)
            count = cache.incr(key)
        attempt._counted.append(key)
        if count > limit:
            waits.append(max(window_start + period - now, 1))
    if waits:
        attempt.give_back()
        attempt.wait = max(waits)
    return attempt


def attempt_reset(request: HttpRequest, *, group: str, rates: list[tuple[str, str]], keys: Mapping[str, str] | None = None) -> None:
    """Forget the counts of the current windows (``rates`` and ``keys`` as for
    ``attempt_count``): for when the secret itself has changed, e.g. a
    password reset by email, so the old guesses no longer say anything."""
    now = int(time.time())
    for key_name, rate in rates:
        _, period = parse_rate(rate)
        cache.delete(_counter_key(request, group, key_name, period, now - now % period, keys))

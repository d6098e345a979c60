"""The one comparison key of an email address.

``idn@пример.рф``, ``IDN@ПРИМЕР.РФ`` and ``idn@xn--e1afmkfd.xn--p1ai`` are one
mailbox: mail servers see the domain in its ASCII (punycode) form, and the site
treats the address without regard to case. Every table that stores an address
to compare (accounts, allowances, notifications) stores ``email_key(address)``
beside it, and every lookup compares keys, never addresses as typed.
"""

import functools
import unicodedata

try:
    import idna
except ImportError:  # pragma: no cover - idna is a pinned requirement
    idna = None  # type: ignore[assignment]


def email_key(address: str) -> str:
    """The comparison key of ``address``: surrounding spaces stripped, NFC, the
    local part lower-cased, the domain in its lower-cased IDNA (punycode) form.

    The domain is converted with the ``idna`` package (IDNA 2008 with the UTS 46
    mapping, so ``ＥＸＡＭＰＬＥ.com`` and ``Bücher.example`` map as a browser
    maps them). A domain that IDNA 2008 refuses but IDNA 2003 accepted (such as
    ``☃.net``) falls back to Python's own ``idna`` codec (IDNA 2003), which is
    also what is used should the package be missing; a domain neither accepts
    is only lower-cased (such an address fails validation anyway). An ASCII
    domain, ``xn--`` labels included, is already in its final form and is only
    lower-cased.

    Pure and cheap for ASCII addresses; never raises."""
    text = unicodedata.normalize("NFC", (address or "").strip())
    local, at, domain = text.rpartition("@")
    if not at:
        return text.lower()
    return f"{local.lower()}@{domain_key(domain)}"


def domain_key(domain: str) -> str:
    """The lower-cased ASCII form of a mail domain (see ``email_key``)."""
    if domain.isascii():
        return domain.lower()
    return _idna_domain_key(domain)


# IDNA in pure Python costs a few hundred microseconds a domain; a paste of
# 10,000 addresses has few distinct domains.
@functools.lru_cache(maxsize=4096)
def _idna_domain_key(domain: str) -> str:
    if idna is not None:
        try:
            return idna.encode(domain, uts46=True).decode("ascii").lower()
        except idna.IDNAError:
            pass
    try:
        return domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return domain.lower()

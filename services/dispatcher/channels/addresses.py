"""Which resolved addresses an outbound call may reach: public ones only (SSRF guard).

An address is public when :mod:`ipaddress` calls it global *and*, for the IPv6
forms that carry an IPv4 address inside, so is that IPv4 address: a 6to4 address
(``2002::/16``) for 127.0.0.1 reaches 127.0.0.1 through any 6to4 relay, a NAT64
address (``64:ff9b::/96``) through the local translator. The forms checked:

* IPv4-mapped ``::ffff:0:0/96`` and IPv4-translated ``::ffff:0:0:0/96``;
* IPv4-compatible ``::/96`` (deprecated by RFC 4291: refused whatever it holds);
* 6to4 ``2002::/16`` (the IPv4 address in bits 16 to 47);
* Teredo ``2001::/32`` (server and client, the client's bits inverted);
* NAT64 ``64:ff9b::/96`` (RFC 6052; the last 32 bits); the local-use prefix
  ``64:ff9b:1::/48`` (RFC 8215) is refused, its translator is on the local network.
"""

from __future__ import annotations

import ipaddress

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
_COMPATIBLE = ipaddress.ip_network("::/96")
_KINDS = ("unspecified", "loopback", "link_local", "multicast", "private", "reserved")


def _plain_refusal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    for kind in _KINDS:
        if getattr(ip, f"is_{kind}"):
            article = "an" if kind == "unspecified" else "a"
            return f"{article} {kind.replace('_', '-')} address"
    return None if ip.is_global else "not a public address"


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    """The IPv4 addresses an IPv6 address carries, each with the name of its form."""
    found: list[tuple[str, ipaddress.IPv4Address]] = []
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
    if ip.ipv4_mapped is not None:
        found.append(("IPv4-mapped", ip.ipv4_mapped))
    if ip in _TRANSLATED:
        found.append(("IPv4-translated", low32))
    if ip.sixtofour is not None:
        found.append(("6to4", ip.sixtofour))
    if ip.teredo is not None:
        server, client = ip.teredo
        found += [("Teredo server", server), ("Teredo client", client)]
    if ip in _NAT64:
        found.append(("NAT64", low32))
    return found


def refusal(address: str) -> str | None:
    """Why a call must not go to ``address`` (a resolved IPv4 or IPv6 address), or None."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv4Address):
        return _plain_refusal(ip)
    embedded = embedded_ipv4(ip)
    for form, inner in embedded:
        why = _plain_refusal(inner)
        if why:
            return f"{form} for {inner}, {why}"
    if embedded and ip.sixtofour is None and ip.teredo is None:
        return None  # mapped, translated, NAT64: the IPv4 address is where the call goes
    if ip in _COMPATIBLE and int(ip) > 1:  # :: and ::1 are reported below as themselves
        return "a deprecated IPv4-compatible address"
    if ip in _NAT64_LOCAL:
        return "a local-use NAT64 address"
    return _plain_refusal(ip)

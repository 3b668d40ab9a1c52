"""Secure aggregation of the site vectors: the coordinator learns only their sum.

Every site has an X25519 key pair (key agreement) besides its Ed25519 signing key
(:mod:`cohort_etl.network.keys`); the coordinator's network file lists the public keys of
the round's roster (>= 3 sites). Each pair of sites ``(a, b)`` shares a secret without
talking to each other: ``X25519(private_a, public_b) == X25519(private_b, public_a)``;
HKDF-SHA256 turns it (with the round id and both site ids) into a 32-byte seed, and
SHAKE-256 of the seed into a stream of 128-bit masks. Site ``a`` adds the stream of every
peer ``b > a`` and subtracts that of every peer ``b < a`` (modulo ``2**128``): each
masked vector is uniformly distributed on its own, and the masks cancel only in the sum
over the whole roster (additive masking, Bonawitz et al. 2017, without the dropout
recovery: a site that drops out means the round is repeated with a new roster).

Values are integers (counts) or fixed-point numbers (``round(x * 2**40)``) in the ring
``Z / 2**128``; the sum is decoded to signed values. With 40 fractional bits the
rounding error of a sum over k sites is at most ``k * 2**-41`` (about 5e-13 per site).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from cohort_etl.errors import InputDataError

MODULUS = 1 << 128
HALF = 1 << 127
FIXED_BITS = 40
SCALE = float(1 << FIXED_BITS)
MIN_SITES = 3
KINDS = ("int", "fixed")


@dataclass(frozen=True)
class Component:
    """One named block of a site vector: ``kind`` "int" (counts) or "fixed" (reals)."""

    key: str
    kind: str
    length: int

    def to_dict(self) -> dict[str, object]:
        return {"key": self.key, "kind": self.kind, "length": self.length}


def encode(values: Sequence[float] | np.ndarray, kind: str) -> list[int]:
    """Ring elements of a block: counts as they are, reals as ``round(x * 2**40)``."""
    arr = np.asarray(values, dtype=float).ravel()
    if not np.all(np.isfinite(arr)):
        raise InputDataError(f"secure aggregation: non-finite value in a {kind} block")
    if kind == "int":
        if not np.all(arr == np.round(arr)):
            raise InputDataError("secure aggregation: a count block holds a non-integer")
        return [int(v) % MODULUS for v in arr]
    if kind == "fixed":
        return [round(float(v) * SCALE) % MODULUS for v in arr]
    raise InputDataError(f"secure aggregation: unknown block kind {kind!r}")


def decode(ring: Sequence[int], kind: str) -> np.ndarray:
    """Signed values of ring elements (inverse of :func:`encode` for sums)."""
    signed = [v - MODULUS if v >= HALF else v for v in ring]
    if kind == "int":
        return np.asarray(signed, dtype=np.int64)
    return np.asarray([v / SCALE for v in signed], dtype=float)


def pair_seed(
    own: X25519PrivateKey, peer_public: bytes, round_id: str, site_a: str, site_b: str
) -> bytes:
    """The 32-byte seed two sites share for one round (same value on both sides)."""
    shared = own.exchange(X25519PublicKey.from_public_bytes(peer_public))
    lo, hi = sorted((site_a, site_b))
    info = f"cohort-etl secure aggregation|{round_id}|{lo}|{hi}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)


def mask_stream(seed: bytes, n: int) -> list[int]:
    """``n`` pseudo-random ring elements from a seed (SHAKE-256 as the generator)."""
    raw = hashlib.shake_256(seed).digest(16 * n)
    return [int.from_bytes(raw[16 * i : 16 * i + 16], "little") for i in range(n)]


def mask_vector(
    ring: Sequence[int],
    site_id: str,
    own: X25519PrivateKey,
    roster: Mapping[str, bytes],
    round_id: str,
) -> list[int]:
    """Add the pairwise masks of ``site_id`` with every other roster site to ``ring``."""
    if site_id not in roster:
        raise InputDataError(f"site {site_id!r}: not in the round's roster {sorted(roster)}")
    if len(roster) < MIN_SITES:
        raise InputDataError(
            f"secure aggregation needs >= {MIN_SITES} sites in the roster, got {len(roster)}"
        )
    out = list(ring)
    n = len(out)
    for peer in sorted(roster):
        if peer == site_id:
            continue
        stream = mask_stream(pair_seed(own, roster[peer], round_id, site_id, peer), n)
        sign = 1 if site_id < peer else -1
        out = [(v + sign * m) % MODULUS for v, m in zip(out, stream, strict=True)]
    return out


def aggregate(masked: Sequence[Sequence[int]]) -> list[int]:
    """Sum of the masked vectors of the whole roster: the masks cancel."""
    if len(masked) < MIN_SITES:
        raise InputDataError(f"secure aggregation needs >= {MIN_SITES} sites, got {len(masked)}")
    lengths = {len(v) for v in masked}
    if len(lengths) != 1:
        raise InputDataError(f"secure aggregation: vectors of different lengths {sorted(lengths)}")
    total = [0] * lengths.pop()
    for vec in masked:
        total = [(a + b) % MODULUS for a, b in zip(total, vec, strict=True)]
    return total


def to_bytes(ring: Sequence[int]) -> bytes:
    """16 bytes little-endian per element (the package's ``masked.bin``)."""
    return b"".join(int(v).to_bytes(16, "little") for v in ring)


def from_bytes(data: bytes) -> list[int]:
    if len(data) % 16:
        raise InputDataError("masked vector: length is not a multiple of 16 bytes")
    return [int.from_bytes(data[i : i + 16], "little") for i in range(0, len(data), 16)]

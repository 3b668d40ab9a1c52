"""Site keys, the coordinator's network file (registered public keys and round settings),
and the Ed25519 signature of a package's ``package.json``.

A site key file (``<site>.key.json``, private, written with mode 0600) holds the site's
Ed25519 signing key and X25519 key-agreement key; its public half (``<site>.pub.json``)
is sent to the coordinator, who registers it in the network file. The network file is
the round's contract: the roster of sites with their public keys, the round id, the
network minimum cell count and the fixed grids every site must use. Sites read the peer
keys from it (secure aggregation); the coordinator verifies every package against it.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from cohort_etl.errors import InputDataError

NETWORK_KIND = "cohort-etl network"
KEY_KIND = "cohort-etl site key"
PUB_KIND = "cohort-etl site public key"
DEFAULT_INTERVAL_DAYS = 7
DEFAULT_HORIZON_DAYS = 3660
DEFAULT_DATA_CUTOFF = 0.9
PROFILE_LOWER = math.log(0.01)
PROFILE_UPPER = math.log(100.0)
PROFILE_POINTS = 81
#: a site id names files (<site>.key.json) and package fields: a plain token only
SITE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_site_id(value: str, where: str) -> str:
    if not SITE_ID.match(str(value)):
        raise InputDataError(
            f"{where}: site id {value!r}: letters, digits, '_', '.' and '-' only (at most 64)"
        )
    return str(value)


@dataclass(frozen=True)
class SiteKey:
    site_id: str
    sign: Ed25519PrivateKey
    exchange: X25519PrivateKey

    def public(self) -> dict[str, str]:
        raw = (Encoding.Raw, PublicFormat.Raw)
        return {
            "kind": PUB_KIND,
            "site_id": self.site_id,
            "sign_public": self.sign.public_key().public_bytes(*raw).hex(),
            "exchange_public": self.exchange.public_key().public_bytes(*raw).hex(),
        }


@dataclass
class Network:
    """The coordinator's network file (see module docstring)."""

    round_id: str
    study: str
    min_cell: int = 5
    interval_days: int = DEFAULT_INTERVAL_DAYS
    horizon_days: int = DEFAULT_HORIZON_DAYS
    data_cutoff: float | None = DEFAULT_DATA_CUTOFF
    profile_points: int = PROFILE_POINTS
    allow_dirty: bool = False
    table1_levels: dict[str, list[str]] = field(default_factory=dict)
    sites: dict[str, dict[str, str]] = field(default_factory=dict)

    def settings(self) -> dict[str, Any]:
        """What every package must repeat exactly (checked by the coordinator)."""
        return {
            "round_id": self.round_id,
            "study": self.study,
            "interval_days": self.interval_days,
            "horizon_days": self.horizon_days,
            "profile_points": self.profile_points,
            "profile_bounds": [PROFILE_LOWER, PROFILE_UPPER],
            "roster": sorted(self.sites),
        }

    def exchange_keys(self) -> dict[str, bytes]:
        return {s: bytes.fromhex(k["exchange_public"]) for s, k in self.sites.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": NETWORK_KIND,
            "round_id": self.round_id,
            "study": self.study,
            "min_cell": self.min_cell,
            "interval_days": self.interval_days,
            "horizon_days": self.horizon_days,
            "data_cutoff": self.data_cutoff,
            "profile_points": self.profile_points,
            "allow_dirty": self.allow_dirty,
            "table1_levels": self.table1_levels,
            "sites": dict(sorted(self.sites.items())),
        }

    def write(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")


def _read_json(path: Path, what: str) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: {what} not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputDataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputDataError(f"{path}: expected a JSON object")
    return data


def read_network(path: Path) -> Network:
    data = _read_json(path, "network file")
    if data.get("kind") != NETWORK_KIND:
        raise InputDataError(f"{path}: not a cohort-etl network file (kind {data.get('kind')!r})")
    try:
        net = Network(
            round_id=str(data["round_id"]),
            study=str(data["study"]),
            min_cell=int(data["min_cell"]),
            interval_days=int(data["interval_days"]),
            horizon_days=int(data["horizon_days"]),
            data_cutoff=None if data.get("data_cutoff") is None else float(data["data_cutoff"]),
            profile_points=int(data["profile_points"]),
            allow_dirty=bool(data.get("allow_dirty", False)),
            table1_levels={
                str(k): [str(x) for x in v] for k, v in data.get("table1_levels", {}).items()
            },  # fmt: skip
            sites={str(k): dict(v) for k, v in data.get("sites", {}).items()},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputDataError(f"{path}: missing or bad field ({exc})") from None
    check_network(net, str(path))
    return net


def check_network(net: Network, source: str) -> None:
    if net.min_cell < 0:
        raise InputDataError(f"{source}: min_cell must be >= 0, got {net.min_cell}")
    if net.interval_days < 1 or net.horizon_days < net.interval_days:
        raise InputDataError(
            f"{source}: interval_days must be >= 1 and <= horizon_days "
            f"(got {net.interval_days}, {net.horizon_days})"
        )
    if net.profile_points < 3:
        raise InputDataError(f"{source}: profile_points must be >= 3, got {net.profile_points}")
    if net.data_cutoff is not None and not 0 < net.data_cutoff <= 1:
        raise InputDataError(f"{source}: data_cutoff must be in (0, 1], got {net.data_cutoff}")


def generate_key(site_id: str) -> SiteKey:
    check_site_id(site_id, "keygen")
    return SiteKey(site_id, Ed25519PrivateKey.generate(), X25519PrivateKey.generate())


def write_key(key: SiteKey, out_dir: Path) -> tuple[Path, Path]:
    """Write ``<site>.key.json`` (private, mode 0600) and ``<site>.pub.json``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    private = out_dir / f"{key.site_id}.key.json"
    if private.exists():
        raise InputDataError(f"{private}: exists; refusing to overwrite a site key")
    raw = {
        "kind": KEY_KIND,
        "site_id": key.site_id,
        "sign_private": key.sign.private_bytes_raw().hex(),
        "exchange_private": key.exchange.private_bytes_raw().hex(),
    }
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(raw, indent=2) + "\n")
    public = out_dir / f"{key.site_id}.pub.json"
    public.write_text(json.dumps(key.public(), indent=2) + "\n", encoding="utf-8")
    return private, public


def read_key(path: Path) -> SiteKey:
    data = _read_json(path, "site key file")
    if data.get("kind") != KEY_KIND:
        raise InputDataError(f"{path}: not a cohort-etl site key (kind {data.get('kind')!r})")
    try:
        return SiteKey(
            str(data["site_id"]),
            Ed25519PrivateKey.from_private_bytes(bytes.fromhex(data["sign_private"])),
            X25519PrivateKey.from_private_bytes(bytes.fromhex(data["exchange_private"])),
        )
    except (KeyError, ValueError) as exc:
        raise InputDataError(f"{path}: bad site key ({exc})") from None


def register(net: Network, public_file: Path) -> str:
    """Add a site's public keys to the network; a site id is registered once."""
    data = _read_json(public_file, "public key file")
    if data.get("kind") != PUB_KIND:
        raise InputDataError(f"{public_file}: not a site public key (kind {data.get('kind')!r})")
    site = check_site_id(str(data.get("site_id", "")), str(public_file))
    for f in ("sign_public", "exchange_public"):
        value = str(data.get(f, ""))
        if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
            raise InputDataError(f"{public_file}: {f} is not a 32-byte hex key")
    if site in net.sites and net.sites[site] != {
        "sign_public": data["sign_public"], "exchange_public": data["exchange_public"]
    }:  # fmt: skip
        raise InputDataError(f"{public_file}: site {site!r} is registered with another key")
    net.sites[site] = {"sign_public": data["sign_public"],
                       "exchange_public": data["exchange_public"]}  # fmt: skip
    return site


def sign(key: SiteKey, data: bytes) -> str:
    return key.sign.sign(data).hex()


def verify(net: Network, site_id: str, data: bytes, signature_hex: str | None, where: str) -> None:
    """Raise naming the site unless ``signature_hex`` is the registered key's signature."""
    if site_id not in net.sites:
        raise InputDataError(
            f"{where}: site {site_id!r} (field site_id) is not registered in the network"
        )
    if not signature_hex:
        raise InputDataError(f"{where}: site {site_id!r}: package is not signed (no package.sig)")
    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(net.sites[site_id]["sign_public"]))
    try:
        public.verify(bytes.fromhex(signature_hex.strip()), data)
    except (InvalidSignature, ValueError):
        raise InputDataError(
            f"{where}: site {site_id!r}: signature of package.json does not verify with the "
            "registered key (package.json altered, or signed by another key)"
        ) from None

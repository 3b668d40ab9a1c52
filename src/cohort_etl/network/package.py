"""Site package (schema version 2): what a site sends to the coordinator.

A folder of three files (docs/network.md)::

    package.json   provenance, round settings, the layout of the masked vector, the
                   site's own effect estimates, sha256 of masked.bin
    masked.bin     the site's vector blocks (:mod:`cohort_etl.network.site`), encoded in
                   Z / 2**128 and masked for secure aggregation (16 bytes per element)
    package.sig    Ed25519 signature (hex) of the exact bytes of package.json

No count, risk table or likelihood profile of the site is readable from the package: the
masked vector is uniformly random unless summed with the packages of the whole roster.
Writing is deterministic except for nothing: same data, key and network -> same bytes
(Ed25519 signatures are deterministic).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cohort_etl import __version__
from cohort_etl.errors import InputDataError
from cohort_etl.network import secagg
from cohort_etl.network.keys import Network, SiteKey, sign
from cohort_etl.network.secagg import Component
from cohort_etl.network.site import SiteData, contribution, site_estimate, weighted

SCHEMA_VERSION = 2
KIND = "cohort-etl site package"
FILES = ("package.json", "masked.bin", "package.sig")
PROVENANCE_FIELDS = (
    "study_spec_sha256",
    "concept_sets",
    "concept_sets_sha256",
    "code_revision",
    "code_dirty",
    "cohort_etl_version",
    "dbt_version",
    "duckdb_version",
    "vocabulary_version",
    "source_manifest_sha256",
)


@dataclass(frozen=True)
class StudyInfo:
    study: str
    title: str
    arms: dict[str, str]
    data_cutoff: str | None = None


ANCHORS_KIND = "cohort-etl nuisance anchors"


@dataclass(frozen=True)
class Anchors:
    """The pooled nuisance coefficients of a pass of a round (``anchors.json`` written by
    ``pool``): per analysis with other terms, one vector per profile grid point; per
    weighted analysis (the target trial) the pooled log HR (one number), where the sites
    evaluate the pieces of the robust variance. A site exports the next pass expanded
    there (docs/network.md, refinement passes)."""

    round_id: str
    pass_number: int
    nuisance: dict[str, np.ndarray]
    sha256: str
    source: str = ""


def anchors_json(round_id: str, pass_number: int, nuisance: dict[str, np.ndarray]) -> bytes:
    body = {"kind": ANCHORS_KIND, "round_id": round_id, "pass": pass_number,
            "nuisance": {k: np.asarray(v).tolist() for k, v in sorted(nuisance.items())}}  # fmt: skip
    return (json.dumps(body, sort_keys=True) + "\n").encode("utf-8")


def read_anchors(path: Path) -> Anchors:
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: not found (anchors.json of a pooled pass)")
    body = path.read_bytes()
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise InputDataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("kind") != ANCHORS_KIND:
        raise InputDataError(f"{path}: not a cohort-etl anchors file")
    try:
        nuisance = {str(k): np.asarray(v, dtype=float) for k, v in data["nuisance"].items()}
        return Anchors(str(data["round_id"]), int(data["pass"]), nuisance,
                       hashlib.sha256(body).hexdigest(), str(path))  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise InputDataError(f"{path}: field {exc} missing or malformed") from None


@dataclass
class SitePackage:
    meta: dict[str, Any]
    masked: list[int] = field(default_factory=list)
    signature: str | None = None
    path: str = ""

    @property
    def site_id(self) -> str:
        return str(self.meta.get("site_id"))

    def layout(self) -> list[Component]:
        return [Component(str(c["key"]), str(c["kind"]), int(c["length"]))
                for c in self.meta.get("layout", [])]  # fmt: skip


def combined_concept_hash(concept_sets: dict[str, str]) -> str:
    lines = "".join(f"{k}\t{v}\n" for k, v in sorted(concept_sets.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def provenance_from_manifest(manifest: dict[str, Any], manifest_bytes: bytes) -> dict[str, Any]:
    """Provenance of a run (``manifest.json`` of ``cohort-etl run``)."""
    rev = str(manifest.get("git_revision") or "unknown")
    concept_sets = {str(k): str(v) for k, v in (manifest.get("concept_sets_sha256") or {}).items()}
    return {
        "study_spec_sha256": manifest.get("study_spec_sha256"),
        "concept_sets": dict(sorted(concept_sets.items())),
        "concept_sets_sha256": combined_concept_hash(concept_sets),
        "code_revision": rev.removesuffix("+dirty"),
        "code_dirty": rev.endswith("+dirty") or rev == "unknown",
        "cohort_etl_version": manifest.get("package_version"),
        "dbt_version": f"core {manifest.get('dbt_core_version')}, adapter "
        f"{manifest.get('dbt_adapter_version')}",
        "duckdb_version": manifest.get("duckdb_version"),
        "vocabulary_version": manifest.get("vocabulary_version"),
        "source_manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest(),
    }


def layout_hash(layout: list[Component]) -> str:
    text = json.dumps([c.to_dict() for c in layout], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def build_package(
    site: SiteData,
    info: StudyInfo,
    site_id: str,
    key: SiteKey,
    net: Network,
    provenance: dict[str, Any],
    min_cell: int | None = None,
    attrition_rules: list[str] | None = None,
    anchors: Anchors | None = None,
) -> SitePackage:
    """Reduce the site's data to masked blocks plus clear metadata (nothing else kept).
    ``anchors``: a refinement pass of the round (:class:`Anchors`)."""
    if key.site_id != site_id:
        raise InputDataError(f"site key is for {key.site_id!r}, not for site {site_id!r}")
    if info.study != net.study:
        raise InputDataError(f"study {info.study!r} is not the network round's {net.study!r}")
    missing = [f for f in PROVENANCE_FIELDS if f not in provenance]
    if missing:
        raise InputDataError(f"provenance: missing field(s) {missing}")
    if anchors is not None and anchors.round_id != net.round_id:
        raise InputDataError(f"{anchors.source}: anchors of round {anchors.round_id!r}, not of "
                             f"the network round {net.round_id!r}")  # fmt: skip
    comps, values = contribution(site, net, None if anchors is None else anchors.nuisance)
    ring: list[int] = []
    for comp, vals in zip(comps, values, strict=True):
        ring.extend(secagg.encode(vals, comp.kind))
    # each pass of a round has its own masks (two passes under the same masks would
    # reveal the difference of a site's vectors)
    mask_id = net.round_id if anchors is None else f"{net.round_id}|pass {anchors.pass_number}"
    masked = secagg.mask_vector(ring, site_id, key.exchange, net.exchange_keys(), mask_id)
    estimates = {a.key: site_estimate(a, net.profile_points)
                 for a in sorted(site.cox, key=lambda a: a.key)}  # fmt: skip
    meta: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "site_id": site_id,
        "title": info.title,
        "arms": dict(sorted(info.arms.items())),
        "data_cutoff_date": info.data_cutoff,
        "min_cell": net.min_cell if min_cell is None else int(min_cell),
        **net.settings(),
        "provenance": {**provenance, "exporter_version": __version__},
        "layout": [c.to_dict() for c in comps],
        "layout_sha256": layout_hash(comps),
        "attrition_rules": list(attrition_rules or [r for r, _ in site.attrition]),
        "table1_kinds": dict(sorted(site.table1_kinds.items())),
        "analysis_labels": {a.key: a.label or a.key for a in sorted(site.cox, key=lambda a: a.key)},
        "site_estimates": estimates,
        "pass": _pass(site, anchors),
        "not_exported": list(site.not_exported),
    }
    return SitePackage(meta=meta, masked=masked)


def _pass(site: SiteData, anchors: Anchors | None) -> dict[str, Any]:
    """The package's pass: number, sha256 of the anchors file, and the network-wide log HR
    at which the weighted analyses' robust-variance pieces were evaluated (``robust_at``:
    the same at every site, checked by ``pool``; the coordinator needs it, it is not the
    site's)."""
    if anchors is None:
        return {"number": 1, "anchors_sha256": None}
    out: dict[str, Any] = {"number": anchors.pass_number, "anchors_sha256": anchors.sha256}
    at = {a.key: float(np.ravel(anchors.nuisance[a.key])[0])
          for a in site.cox if weighted(a) and a.key in anchors.nuisance}  # fmt: skip
    if at:
        out["robust_at"] = dict(sorted(at.items()))
    return out


def _json_bytes(meta: dict[str, Any]) -> bytes:
    return (json.dumps(meta, indent=2, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")


def write_package(pkg: SitePackage, key: SiteKey, out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputDataError(f"{out_dir}: exists and is not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    data = secagg.to_bytes(pkg.masked)
    (out_dir / "masked.bin").write_bytes(data)
    meta = {**pkg.meta, "files": {"masked.bin": hashlib.sha256(data).hexdigest()}}
    body = _json_bytes(_clean(meta))
    (out_dir / "package.json").write_bytes(body)
    (out_dir / "package.sig").write_text(sign(key, body) + "\n", encoding="utf-8")
    return out_dir


def _clean(x: Any) -> Any:
    """JSON-safe: numpy scalars to Python, non-finite floats to None."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


def read_package(path: Path) -> tuple[SitePackage, bytes]:
    """Read a package folder (no verification beyond the format): the package and the
    exact bytes of its package.json (what the signature covers)."""
    path = Path(path)
    pj = path / "package.json"
    if not pj.is_file():
        raise InputDataError(f"{pj}: not found (is this a site package folder?)")
    body = pj.read_bytes()
    try:
        meta = json.loads(body)
    except json.JSONDecodeError as exc:
        raise InputDataError(f"{pj}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("kind") != KIND:
        raise InputDataError(f"{pj}: not a cohort-etl site package")
    site = meta.get("site_id")
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise InputDataError(
            f"{path}: site {site!r}: field schema_version is {meta.get('schema_version')!r}; "
            f"this cohort-etl pools version {SCHEMA_VERSION}"
        )
    sig_file = path / "package.sig"
    signature = sig_file.read_text(encoding="utf-8").strip() if sig_file.is_file() else None
    mb = path / "masked.bin"
    if not mb.is_file():
        raise InputDataError(f"{mb}: site {site!r}: missing from the package")
    data = mb.read_bytes()
    if hashlib.sha256(data).hexdigest() != meta.get("files", {}).get("masked.bin"):
        raise InputDataError(
            f"{mb}: site {site!r}: field files.masked.bin: sha256 differs from package.json "
            "(file altered)"
        )
    return SitePackage(meta=meta, masked=secagg.from_bytes(data), signature=signature,
                       path=str(path)), body  # fmt: skip

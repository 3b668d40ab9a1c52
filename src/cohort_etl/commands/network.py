"""``cohort-etl export`` (a site's signed, masked package), ``cohort-etl pool`` (the
coordinator) and ``cohort-etl network keygen | init | register`` (keys and the round
file); the work is in :mod:`cohort_etl.network` (docs/network.md)."""

from __future__ import annotations

from pathlib import Path

import click

_path = click.Path(path_type=Path)


def _site_id(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A site id names files (<site>.key.json) and package fields: a plain token only."""
    from cohort_etl.network.keys import SITE_ID

    if not SITE_ID.match(value):
        raise click.BadParameter(
            f"{value!r}: letters, digits, '_', '.' and '-' only (at most 64)", ctx, param
        )
    return value


@click.command("export")
@click.option("--study-dir", required=True, type=_path,
              help="A finished study folder: output/<profile>/<study>/ of `cohort-etl run`.")  # fmt: skip
@click.option("--site-id", required=True, callback=_site_id,
              help="This site's identifier in the network.")  # fmt: skip
@click.option("--key", "key_file", required=True, type=_path,
              help="This site's private key file (<site>.key.json, from `network keygen`).")  # fmt: skip
@click.option("--network", "network_file", required=True, type=_path,
              help="The coordinator's network file of the round (network.json).")  # fmt: skip
@click.option("--min-cell", type=int, default=None,
              help="Minimum cell count this site requires (default: the network's; never "
              "below it).")  # fmt: skip
@click.option("--anchors", "anchors_file", type=_path, default=None,
              help="anchors.json of the round's previous pass (from `cohort-etl pool`): "
              "export the next pass, models with adjustment terms expanded at the pooled "
              "coefficients, the target trial's robust-variance pieces at the pooled log HR "
              "(docs/network.md).")  # fmt: skip
@click.option("--out", "out_dir", required=True, type=_path, help="Package folder.")
def export(study_dir: Path, site_id: str, key_file: Path, network_file: Path,
           min_cell: int | None, anchors_file: Path | None, out_dir: Path) -> None:  # fmt: skip
    """Write the signed, masked package of one study (aggregates only)."""
    from cohort_etl.network.keys import read_key, read_network
    from cohort_etl.network.package import build_package, read_anchors, write_package
    from cohort_etl.network.study_folder import site_from_study_dir

    net = read_network(network_file)
    key = read_key(key_file)
    anchors = None if anchors_file is None else read_anchors(anchors_file)
    site, info, prov, rules = site_from_study_dir(study_dir, net)
    pkg = build_package(site, info, site_id, key, net, prov, min_cell=min_cell,
                        attrition_rules=rules, anchors=anchors)  # fmt: skip
    write_package(pkg, key, out_dir)
    click.echo(f"package of {info.study} for site {site_id} (round {net.round_id}, pass "
               f"{pkg.meta['pass']['number']}): {out_dir}; "
               f"{len(pkg.meta['site_estimates'])} hazard ratio(s) profiled, "
               f"{len(site.not_exported)} section(s) not exported", err=True)  # fmt: skip


@click.command("pool")
@click.argument("packages", nargs=-1, required=True, type=_path)
@click.option("--network", "network_file", required=True, type=_path,
              help="The network file with the registered public keys.")  # fmt: skip
@click.option("--allow-dirty", is_flag=True,
              help="Accept packages whose run came from a modified code tree.")  # fmt: skip
@click.option("--out", "out_dir", required=True, type=_path, help="Output folder.")
def pool(packages: tuple[Path, ...], network_file: Path, allow_dirty: bool, out_dir: Path) -> None:
    """Verify and pool the packages of one round: pooled KM, HRs, Table 1, report."""
    from cohort_etl.network.keys import read_network
    from cohort_etl.network.pool import pool_packages

    result = pool_packages(list(packages), read_network(network_file), out_dir, allow_dirty)
    click.echo(f"pooled {len(result['sites'])} site package(s) of {result['study']} (pass "
               f"{result['pass']['number']}): {out_dir / 'report.html'}", err=True)  # fmt: skip
    if (out_dir / "anchors.json").is_file():
        click.echo(f"models with adjustment terms or a target trial (robust CI): send "
                   f"{out_dir / 'anchors.json'} to the sites for a refinement pass "
                   "(export --anchors)", err=True)  # fmt: skip


@click.group("network")
def network() -> None:
    """Site keys and the coordinator's network file."""


@network.command("keygen")
@click.option("--site-id", required=True, callback=_site_id)
@click.option("--out-dir", required=True, type=_path)
def keygen(site_id: str, out_dir: Path) -> None:
    """Create <site>.key.json (private, mode 0600) and <site>.pub.json (for the coordinator)."""
    from cohort_etl.network.keys import generate_key, write_key

    private, public = write_key(generate_key(site_id), out_dir)
    click.echo(f"private key: {private}\npublic key (send to the coordinator): {public}", err=True)


@network.command("init")
@click.option("--study", required=True, help="Study name (the spec's `name`).")
@click.option("--round-id", required=True, help="Identifier of this round (masks depend on it).")
@click.option("--min-cell", type=int, default=5, show_default=True)
@click.option("--interval-days", type=int, default=7, show_default=True)
@click.option("--horizon-days", type=int, default=3660, show_default=True)
@click.option("--level", "levels", multiple=True,
              help="Table 1 levels of a categorical variable: VAR=L1,L2,...")  # fmt: skip
@click.option("--out", "out_file", required=True, type=_path)
def init(study: str, round_id: str, min_cell: int, interval_days: int, horizon_days: int,
         levels: tuple[str, ...], out_file: Path) -> None:  # fmt: skip
    """Create the network file of a round (then `network register` each site)."""
    from cohort_etl.errors import InputDataError
    from cohort_etl.network.keys import Network, check_network

    table1: dict[str, list[str]] = {}
    for spec in levels:
        var, sep, rest = spec.partition("=")
        if not sep or not var or not rest:
            raise InputDataError(f"--level {spec!r}: expected VAR=L1,L2,...")
        table1[var] = rest.split(",")
    net = Network(round_id=round_id, study=study, min_cell=min_cell, interval_days=interval_days,
                  horizon_days=horizon_days, table1_levels=table1)  # fmt: skip
    check_network(net, str(out_file))
    if out_file.exists():
        raise InputDataError(f"{out_file}: exists; refusing to overwrite a network file")
    net.write(out_file)
    click.echo(f"network file: {out_file}", err=True)


@network.command("register")
@click.option("--network", "network_file", required=True, type=_path)
@click.argument("public_keys", nargs=-1, required=True, type=_path)
def register_cmd(network_file: Path, public_keys: tuple[Path, ...]) -> None:
    """Register sites' public keys (<site>.pub.json) in the network file."""
    from cohort_etl.network.keys import read_network, register

    net = read_network(network_file)
    sites = [register(net, p) for p in public_keys]
    net.write(network_file)
    click.echo(f"registered {', '.join(sites)}; roster: {', '.join(sorted(net.sites))}", err=True)

"""The synthetic vocabulary slice is coherent the way an Athena download is."""

from __future__ import annotations

import duckdb
import pytest

from cohort_etl.cdm.ddl import VOCABULARY_TABLES
from cohort_etl.cdm.spec import TABLES
from cohort_etl.synthetic import vocabulary as v


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    for name, table in v.vocabulary_tables().items():
        c.register(name, table)
    return c


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def test_tables_and_columns_follow_the_spec() -> None:
    tables = v.vocabulary_tables()
    assert set(tables) == set(VOCABULARY_TABLES)
    for name, table in tables.items():
        assert table.column_names == [f.name for f in TABLES[name]], name


def test_concept_ids_unique_and_local_range_used_for_unknown_ids(con) -> None:
    assert rows(con, "select count(*) - count(distinct concept_id) from concept") == [(0,)]
    # obecabtagene has no public id: local range; tisagenlecleucel keeps its real id
    assert v.OBECABTAGENE >= v.LOCAL_BASE
    assert v.TISAGENLECLEUCEL == 792737
    assert v.concept_by_code("ICD10CM", "C91.02") >= v.LOCAL_BASE
    assert v.concept_by_code("CPT4", "38240") == 2108456


def test_source_codes_are_nonstandard_with_valid_maps_to_a_standard_concept(con) -> None:
    bad = rows(
        con,
        """
        select s.vocabulary_id, s.concept_code
        from concept s
        where s.vocabulary_id in ('ICD10CM', 'ICD9CM', 'HCPCS') and s.standard_concept is not null
        """,
    )
    assert bad == []
    unmapped = rows(
        con,
        """
        select s.concept_code from concept s
        where s.vocabulary_id in ('ICD10CM', 'ICD9CM', 'HCPCS')
          and not exists (
            select 1 from concept_relationship r join concept t on t.concept_id = r.concept_id_2
            where r.concept_id_1 = s.concept_id and r.relationship_id = 'Maps to'
              and r.invalid_reason is null and t.standard_concept = 'S')
        """,
    )
    assert unmapped == []
    expected = {
        ("ICD10CM", "C91.00"): v.ALL,
        ("ICD10CM", "C91.01"): v.ALL_REMISSION,
        ("ICD10CM", "C91.02"): v.ALL_RELAPSE,
        ("ICD9CM", "204.02"): v.ALL_RELAPSE,
        ("HCPCS", "Q2042"): v.TISAGENLECLEUCEL,
        ("HCPCS", "Q2053"): v.BREXUCABTAGENE,
        ("HCPCS", "Q2058"): v.OBECABTAGENE,
    }
    for (vocab, code), target in expected.items():
        got = rows(
            con,
            f"""
            select r.concept_id_2 from concept c join concept_relationship r
              on r.concept_id_1 = c.concept_id and r.relationship_id = 'Maps to'
             and r.invalid_reason is null
            where c.vocabulary_id = '{vocab}' and c.concept_code = '{code}'
            """,
        )
        assert got == [(target,)], (vocab, code)


def test_every_relationship_has_its_reverse_and_known_concepts(con) -> None:
    assert rows(
        con,
        """
        select count(*) from concept_relationship r
        join relationship d on d.relationship_id = r.relationship_id
        where not exists (
          select 1 from concept_relationship b
          where b.concept_id_1 = r.concept_id_2 and b.concept_id_2 = r.concept_id_1
            and b.relationship_id = d.reverse_relationship_id)
        """,
    ) == [(0,)]
    assert rows(
        con,
        """
        select count(*) from concept_relationship r
        where r.concept_id_1 not in (select concept_id from concept)
           or r.concept_id_2 not in (select concept_id from concept)
           or r.relationship_id not in (select relationship_id from relationship)
        """,
    ) == [(0,)]


def test_concept_ancestor_is_reflexive_transitive_and_ordered(con) -> None:
    # every valid standard / classification concept is its own ancestor at level 0
    assert rows(
        con,
        """
        select count(*) from concept c
        where c.standard_concept in ('S', 'C') and c.invalid_reason is null
          and not exists (select 1 from concept_ancestor a
                          where a.ancestor_concept_id = c.concept_id
                            and a.descendant_concept_id = c.concept_id
                            and a.min_levels_of_separation = 0
                            and a.max_levels_of_separation = 0)
        """,
    ) == [(0,)]
    assert rows(
        con,
        "select count(*) from concept_ancestor where min_levels_of_separation > max_levels_of_separation",
    ) == [(0,)]
    # transitive closure: A > B and B > C implies A > C
    assert rows(
        con,
        """
        select count(*) from concept_ancestor x join concept_ancestor y
          on y.ancestor_concept_id = x.descendant_concept_id
        where not exists (select 1 from concept_ancestor z
                          where z.ancestor_concept_id = x.ancestor_concept_id
                            and z.descendant_concept_id = y.descendant_concept_id)
        """,
    ) == [(0,)]


def test_ancestry_links_only_standard_concepts_except_the_documented_stale_rows(con) -> None:
    odd = rows(
        con,
        """
        select a.ancestor_concept_id, a.descendant_concept_id from concept_ancestor a
        join concept d on d.concept_id = a.descendant_concept_id
        join concept p on p.concept_id = a.ancestor_concept_id
        where d.standard_concept is null or p.standard_concept is null
           or d.invalid_reason is not null or p.invalid_reason is not null
        order by 1
        """,
    )
    assert odd == sorted(
        [
            (v.ACUTE_LEUKEMIA, v.BURKITT_LEUKEMIA_DEPRECATED),
            (v.LYMPHOID_LEUKEMIA, v.BURKITT_LEUKEMIA_DEPRECATED),
            (v.ALL, v.BURKITT_LEUKEMIA_DEPRECATED),
        ]
    )


def test_clinical_hierarchies(con) -> None:
    def level(a: int, d: int) -> list[tuple]:
        return rows(
            con,
            f"select min_levels_of_separation, max_levels_of_separation from concept_ancestor "
            f"where ancestor_concept_id = {a} and descendant_concept_id = {d}",
        )

    assert level(v.ALL, v.B_ALL) == [(1, 1)]
    assert level(v.ALL, v.PH_POS_B_ALL) == [(2, 2)]  # via Ph+ ALL and via B-ALL
    assert level(v.ACUTE_LEUKEMIA, v.ALL) == [(1, 2)]  # directly and via lymphoid leukemia
    assert level(v.ALL, v.T_ALL) == [(1, 1)]
    assert level(v.TISAGENLECLEUCEL, v.KYMRIAH_600M) == [(1, 1)]
    assert level(955215, v.KYMRIAH_600M) == [(2, 2)]  # ATC 5th > ingredient > product
    assert level(v.ALLOGENEIC_BMT, v.CPT_38240_ALLO) == [(1, 1)]
    assert level(v.ALLOGENEIC_BMT, v.CPT_38241_AUTO) == []
    assert level(v.AUTOLOGOUS_BMT, v.ALLO_PBSCT) == []
    assert level(v.HSCT, v.PCS_30233Y3_ALLO) != []
    assert level(v.CART_THERAPY_PROCEDURE, v.CPT_0540T_CART_ADMINISTRATION) == [(1, 1)]
    # apheresis for CAR-T manufacturing is not an infusion
    assert level(v.CART_THERAPY_PROCEDURE, v.CPT_0537T_CART_HARVEST) == []


def test_invalid_rows_exist_so_circe_semantics_matter(con) -> None:
    assert rows(
        con,
        f"select invalid_reason from concept_relationship where concept_id_1 = {v.ICD10CM_C95_00} "
        f"and relationship_id = 'Maps to' order by invalid_reason nulls first",
    ) == [(None,), ("D",)]
    assert rows(
        con, f"select invalid_reason from concept where concept_id = {v.ALL_UPGRADED_OLD}"
    ) == [("U",)]
    # raw concept_ancestor lists the deprecated concept; valid descendants do not
    assert v.BURKITT_LEUKEMIA_DEPRECATED not in v.descendants(v.ALL)
    assert {v.B_ALL, v.T_ALL, v.PH_POS_B_ALL, v.ALL_RELAPSE} <= v.descendants(v.ALL)


def test_metadata_concepts_of_vocabulary_tables_exist(con) -> None:
    for table, column in (
        ("vocabulary", "vocabulary_concept_id"),
        ("domain", "domain_concept_id"),
        ("concept_class", "concept_class_concept_id"),
        ("relationship", "relationship_concept_id"),
    ):
        assert rows(
            con,
            f"select count(*) from {table} where {column} not in (select concept_id from concept)",
        ) == [(0,)], table
    for column, table in (
        ("domain_id", "domain"),
        ("vocabulary_id", "vocabulary"),
        ("concept_class_id", "concept_class"),
    ):
        assert rows(
            con,
            f"select count(*) from concept where {column} not in (select {column} from {table})",
        ) == [(0,)], column


def test_concept_ancestor_is_exactly_the_closure_of_the_is_a_rows(con) -> None:
    """Min and max levels of every valid ancestor row recomputed from the 'Is a' rows of
    concept_relationship by a recursive query; the only rows beyond it are the documented
    stale ones (deprecated descendant)."""
    closure = """
        with recursive valid as (
            select concept_id from concept
            where standard_concept in ('S', 'C') and invalid_reason is null
        ),
        edges as (
            select concept_id_1 as child, concept_id_2 as parent from concept_relationship
            where relationship_id = 'Is a' and invalid_reason is null
        ),
        paths(descendant, ancestor, depth) as (
            select concept_id, concept_id, 0 from valid
            union all
            select paths.descendant, edges.parent, paths.depth + 1
            from paths join edges on edges.child = paths.ancestor
        )
        select ancestor, descendant, min(depth), max(depth) from paths
        group by ancestor, descendant
    """
    stored = "select * from concept_ancestor"
    missing = rows(con, f"{closure} except {stored} order by 1, 2")
    extra = rows(con, f"{stored} except ({closure}) order by 1, 2")
    assert missing == [], "rows to add to concept_ancestor.csv:\n" + "\n".join(
        "\t".join(map(str, r)) for r in missing
    )
    assert extra == [
        (a, v.BURKITT_LEUKEMIA_DEPRECATED, level, level)
        for a, level in sorted([(v.ALL, 1), (v.ACUTE_LEUKEMIA, 2), (v.LYMPHOID_LEUKEMIA, 2)])
    ]


def test_is_a_rows_link_valid_standard_or_classification_concepts(con) -> None:
    assert (
        rows(
            con,
            """
        select r.concept_id_1, r.concept_id_2 from concept_relationship r
        join concept c1 on c1.concept_id = r.concept_id_1
        join concept c2 on c2.concept_id = r.concept_id_2
        where r.relationship_id = 'Is a'
          and (c1.standard_concept not in ('S', 'C') or c1.standard_concept is null
               or c2.standard_concept not in ('S', 'C') or c2.standard_concept is null
               or c1.invalid_reason is not null or c2.invalid_reason is not null)
        """,
        )
        == []
    )


def test_every_concept_says_where_its_id_comes_from() -> None:
    sources = v.concept_sources()
    assert set(sources) == {r.concept_id for r in v.concepts()}
    for concept_id, source in sources.items():
        local = source.startswith("local")
        assert local == (concept_id >= v.LOCAL_BASE), (concept_id, source)
        assert source.strip(), concept_id
    # a real id found in public OHDSI material names the file it was found in
    assert "OMOPCAN" in sources[v.ALL]


def test_version_and_derived_maps_agree_with_the_files() -> None:
    assert {
        row["vocabulary_version"] for row in v.vocabulary_tables()["vocabulary"].to_pylist()
    } == {v.VOCABULARY_VERSION}
    index = v.concept_index()
    for ingredient, product in v.CLINICAL_DRUG.items():
        assert index[ingredient].concept_class_id == "Ingredient"
        assert index[product].concept_class_id == "Clinical Drug"
        assert v.descendants(ingredient) >= {ingredient, product}
    for mapping, vocabulary in (
        (v.BACKGROUND_ICD10_SOURCE, "ICD10CM"),
        (v.BACKGROUND_ICD9_SOURCE, "ICD9CM"),
    ):
        assert mapping
        for standard, source in mapping.items():
            assert index[source].vocabulary_id == vocabulary
            assert v.maps_to()[source] == standard


def test_a_bad_value_in_the_package_data_names_file_line_and_column(tmp_path, monkeypatch) -> None:
    import shutil

    folder = tmp_path / "vocabulary_data"
    shutil.copytree(v._data_folder(), folder)
    lines = (folder / "concept_ancestor.csv").read_text().splitlines()
    lines[3] = lines[3].replace("\t0\t", "\tzero\t", 1)
    (folder / "concept_ancestor.csv").write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(v, "_data_folder", lambda: folder)
    v._read.cache_clear()
    try:
        with pytest.raises(
            ValueError, match=r"concept_ancestor.csv, line 4, column min_levels_of_separation"
        ):
            v._read("concept_ancestor")
    finally:
        v._read.cache_clear()

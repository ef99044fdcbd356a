import json
import tarfile
from pathlib import Path

import pytest
from tiny_ravel import TINY_CITIES, tiny_ravel_files, write_tiny_ravel

from hyperdas_tl.cache import file_sha256
from hyperdas_tl.data.ravel import (
    RAVEL_DOMAINS,
    RAVEL_ENV_VAR,
    RavelDomain,
    Template,
    download_ravel,
    load_ravel,
)


def test_tiny_dir_loads_typed(tiny_domain: RavelDomain):
    assert tiny_domain.attributes == ("Country", "Continent")
    assert tiny_domain.value("Paris", "Country") == "France"
    assert tiny_domain.entities("val") == ["Cairo", "Madrid", "Sydney"]
    assert all(isinstance(t, Template) for t in tiny_domain.templates_for("Country"))
    assert [t.split for t in tiny_domain.templates_for("Country")].count("train") == 3
    assert {c.split for c in tiny_domain.contexts} == {"train", "val", "test"}
    template = tiny_domain.templates_for("Country", "test")[0]
    prompt = template.fill("Seoul")
    start, end = template.entity_span("Seoul")
    assert prompt[start:end] == "Seoul"


def test_tgz_and_dir_give_the_same_domain(tiny_ravel_dir, tiny_ravel_tgz):
    assert (
        load_ravel("city", tiny_ravel_tgz).checksum == load_ravel("city", tiny_ravel_dir).checksum
    )


def test_env_var_is_used(tiny_ravel_tgz, monkeypatch):
    monkeypatch.setenv(RAVEL_ENV_VAR, str(tiny_ravel_tgz))
    assert len(load_ravel("city").entity_split) == len(TINY_CITIES)


def test_round_trip(tiny_domain):
    again = RavelDomain.from_dict(json.loads(json.dumps(tiny_domain.to_dict())))
    assert again.checksum == tiny_domain.checksum
    assert again.templates == tiny_domain.templates


def test_missing_location(monkeypatch, tmp_path):
    monkeypatch.delenv(RAVEL_ENV_VAR, raising=False)
    with pytest.raises(FileNotFoundError, match="download_ravel"):
        load_ravel("city")
    with pytest.raises(FileNotFoundError, match="not found"):
        load_ravel("city", tmp_path / "nowhere.tgz")


def test_missing_file(tiny_ravel_dir):
    (tiny_ravel_dir / "data" / "ravel_city_prompt_to_split.json").unlink()
    with pytest.raises(FileNotFoundError, match="ravel_city_prompt_to_split.json"):
        load_ravel("city", tiny_ravel_dir)


def test_unknown_domain_and_attribute(tiny_ravel_dir, tiny_domain):
    with pytest.raises(ValueError, match="unknown RAVEL domain 'town'"):
        load_ravel("town", tiny_ravel_dir)
    with pytest.raises(ValueError, match="unknown attribute 'Mayor'"):
        tiny_domain.templates_for("Mayor")
    with pytest.raises(ValueError, match="unknown attribute 'Mayor'"):
        tiny_domain.value("Paris", "Mayor")


@pytest.mark.parametrize("bad", ["%s is in %s", "a city in the country of"])
def test_template_needs_exactly_one_placeholder(tmp_path, bad):
    files = tiny_ravel_files()
    files["ravel_city_attribute_to_prompts.json"]["Country"].append(bad)
    files["ravel_city_prompt_to_split.json"][bad] = "train"
    write_tiny_ravel(tmp_path, files)
    with pytest.raises(ValueError, match="exactly one '%s'"):
        load_ravel("city", tmp_path)


def test_entity_without_value(tmp_path):
    files = tiny_ravel_files()
    files["ravel_city_entity_attributes.json"]["Paris"]["Country"] = ""
    write_tiny_ravel(tmp_path, files)
    domain = load_ravel("city", tmp_path)
    assert not domain.has_value("Paris", "Country")
    with pytest.raises(ValueError, match="'Paris' .* no value for attribute 'Country'"):
        domain.value("Paris", "Country")
    with pytest.raises(ValueError, match="unknown entity 'Atlantis'"):
        domain.value("Atlantis", "Country")


@pytest.mark.ravel
def test_download_from_file_url(ravel_archive, tmp_path, monkeypatch):
    monkeypatch.setenv("HYPERDAS_TL_CACHE", str(tmp_path / "cache"))
    folder = download_ravel(url=ravel_archive.as_uri(), sha256=file_sha256(ravel_archive))
    assert (folder / "data" / "ravel_city_entity_attributes.json").is_file()
    assert not (folder / "data.tgz").exists()
    assert load_ravel("verb", folder).checksum == load_ravel("verb", ravel_archive).checksum
    # A second call reuses the cached copy.
    assert download_ravel(url="file:///nonexistent", sha256=file_sha256(ravel_archive)) == folder


def test_download_checksum_mismatch(tiny_ravel_tgz, tmp_path, monkeypatch):
    monkeypatch.setenv("HYPERDAS_TL_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ValueError, match="checksum mismatch"):
        download_ravel(url=tiny_ravel_tgz.as_uri(), sha256="0" * 64)
    assert not any((tmp_path / "cache" / "ravel").iterdir())


@pytest.mark.ravel
def test_all_five_real_domains_load(ravel_archive):
    expected = {
        "city": (3552, {"Country", "Continent", "Latitude", "Longitude", "Language", "Timezone"}),
        "nobel_prize_winner": (928, {"Field", "Award Year", "Birth Year", "Country of Birth"}),
        "occupation": (799, {"Duty", "Industry", "Work Location", "Gender Bias"}),
        "physical_object": (563, {"Category", "Color", "Size", "Texture"}),
        "verb": (986, {"Definition", "Singular", "Past Tense", "Pronunciation"}),
    }
    for name in RAVEL_DOMAINS:
        domain = load_ravel(name, ravel_archive)
        n_entities, attributes = expected[name]
        assert len(domain.entity_split) == n_entities
        assert attributes <= set(domain.attributes)
        assert {t.split for a in domain.attributes for t in domain.templates_for(a)} == {
            "train",
            "val",
            "test",
        }
        assert domain.contexts and all(c.text.count("%s") == 1 for c in domain.contexts)
    city = load_ravel("city", ravel_archive)
    assert city.value("Aalborg", "Country") == "Denmark"
    # occupation's Gender Bias has templates but no stored values.
    occupation = load_ravel("occupation", ravel_archive)
    assert not any(occupation.has_value(e, "Gender Bias") for e in occupation.entities())


@pytest.mark.ravel
def test_real_archive_layout_is_what_the_loader_reads(ravel_archive):
    with tarfile.open(ravel_archive) as tar:
        names = {Path(m.name).name for m in tar.getmembers() if m.isfile()}
    assert len(names) == 25


def truncated_copy(archive: Path, folder: Path) -> Path:
    truncated = folder / "truncated" / "data.tgz"
    truncated.parent.mkdir()
    blob = archive.read_bytes()
    truncated.write_bytes(blob[: len(blob) // 2])
    return truncated


def test_truncated_archive_names_the_file(tiny_ravel_tgz, tmp_path):
    truncated = truncated_copy(tiny_ravel_tgz, tmp_path)
    with pytest.raises(ValueError, match=f"RAVEL archive {truncated} is truncated"):
        load_ravel("city", truncated)


@pytest.mark.ravel
def test_truncated_copy_of_the_real_archive_names_the_file(ravel_archive, tmp_path):
    truncated = truncated_copy(ravel_archive, tmp_path)
    with pytest.raises(ValueError, match=f"RAVEL archive {truncated} is truncated.*EOFError"):
        load_ravel("city", truncated)


def test_a_file_that_is_not_a_tar_archive_names_the_file(tmp_path):
    bogus = tmp_path / "data.tgz"
    bogus.write_text("this is not an archive\n")
    with pytest.raises(ValueError, match=f"RAVEL archive {bogus} is .*not a .tgz.*ReadError"):
        load_ravel("city", bogus)


def test_invalid_json_names_the_file(tiny_ravel_dir, tmp_path):
    broken = tiny_ravel_dir / "data" / "ravel_city_entity_to_split.json"
    broken.write_text('{"Paris": "train",')
    with pytest.raises(ValueError, match="ravel_city_entity_to_split.json is not valid JSON"):
        load_ravel("city", tiny_ravel_dir)
    archive = tmp_path / "broken.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tiny_ravel_dir / "data", arcname="data")
    with pytest.raises(ValueError, match=r"broken.tgz:data/ravel_city_entity_to_split.json is not"):
        load_ravel("city", archive)


@pytest.mark.ravel
def test_local_archive_checksum_is_verified(ravel_archive, tiny_ravel_tgz, caplog):
    from hyperdas_tl.data.ravel import RAVEL_SHA256, verify_ravel_archive

    assert verify_ravel_archive(ravel_archive) == RAVEL_SHA256  # the published archive
    with caplog.at_level("WARNING"):
        load_ravel("city", tiny_ravel_tgz)  # no checksum known: loads, says so
    assert "could not be verified" in caplog.text
    sidecar = tiny_ravel_tgz.with_name("SHA256")
    sidecar.write_text(f"{'0' * 64}  {tiny_ravel_tgz.name}\n")
    with pytest.raises(ValueError, match=f"checksum mismatch for RAVEL archive {tiny_ravel_tgz}"):
        load_ravel("city", tiny_ravel_tgz)
    sidecar.write_text(f"{file_sha256(tiny_ravel_tgz)}  {tiny_ravel_tgz.name}\n")
    caplog.clear()
    with caplog.at_level("WARNING"):
        load_ravel("city", tiny_ravel_tgz)
    assert "could not be verified" not in caplog.text

"""Load the RAVEL benchmark (Huang et al., ACL 2024) as typed :class:`RavelDomain` objects.

RAVEL ships one archive, ``data.tgz``, that unpacks to ``data/`` with five JSON files per entity
type (``city``, ``nobel_prize_winner``, ``occupation``, ``physical_object``, ``verb``):

- ``ravel_{T}_entity_attributes.json``   ``{entity: {attribute: value}}``
- ``ravel_{T}_attribute_to_prompts.json`` ``{attribute: [template with one %s]}``
- ``ravel_{T}_prompt_to_split.json``     ``{template: train|val|test}``
- ``ravel_{T}_entity_to_split.json``     ``{entity: train|val|test}``
- ``wikipedia_{T}_entity_prompts.json``  ``{template: {"split": ..., "entity": name|null}}``

:func:`load_ravel` reads a folder or the ``.tgz`` itself, from an explicit path or
``$HYPERDAS_TL_RAVEL``; :func:`download_ravel` fetches the archive from the public repository,
checks its sha256 and unpacks it into the cache. A local archive's sha256 is checked too
(:func:`verify_ravel_archive`): against the published archive's, else against a ``SHA256`` /
``data.tgz.sha256`` file beside it. Every unreadable input (a truncated or non-tar archive,
invalid JSON, a checksum mismatch) raises ``ValueError`` naming the file. The offline city
domain built by :mod:`hyperdas_tl.data.geonames` is the same :class:`RavelDomain` type.

Empty values in the archive (a few Nobel laureates, occupation's ``Gender Bias``, which has
templates but no stored values) are kept out of ``entity_attributes``: asking for them raises.
"""

import gzip
import hashlib
import json
import logging
import os
import shutil
import tarfile
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from hyperdas_tl.cache import build_atomically, cache_dir, file_sha256
from hyperdas_tl.choices import RAVEL_DOMAINS

logger = logging.getLogger(__name__)

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")
PLACEHOLDER = "%s"
RAVEL_ENV_VAR = "HYPERDAS_TL_RAVEL"
RAVEL_URL = "https://github.com/explanare/ravel/raw/main/data.tgz"
RAVEL_SHA256 = "b148f0ded1979cb0e17e301cfda41cb120517a109d3c758cc768e376946d96bc"
"""sha256 of ``data.tgz`` at explanare/ravel commit e421fc9e."""


def ravel_file_names(domain: str) -> dict[str, str]:
    """The five JSON file names of one entity type, keyed by role."""
    return {
        "entity_attributes": f"ravel_{domain}_entity_attributes.json",
        "attribute_to_prompts": f"ravel_{domain}_attribute_to_prompts.json",
        "prompt_to_split": f"ravel_{domain}_prompt_to_split.json",
        "entity_to_split": f"ravel_{domain}_entity_to_split.json",
        "wikipedia_prompts": f"wikipedia_{domain}_entity_prompts.json",
    }


def check_template(text: str, where: str) -> None:
    """Raise ``ValueError`` unless ``text`` holds exactly one ``%s``."""
    count = text.count(PLACEHOLDER)
    if count != 1:
        raise ValueError(
            f"{where}: template must contain exactly one '%s', found {count}: {text!r}"
        )


def check_split(split: str, where: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"{where}: split must be one of {SPLITS}, got {split!r}")


@dataclass(frozen=True)
class Template:
    """A prompt template asking about one attribute, with exactly one ``%s`` for the entity."""

    text: str
    """The template, e.g. ``"%s is a city in the country of"``."""
    attribute: str
    """The attribute whose value the template's continuation names."""
    split: Split
    """Template split (RAVEL's context split holds out val/test templates)."""

    def __post_init__(self) -> None:
        check_template(self.text, f"template for attribute {self.attribute!r}")
        check_split(self.split, f"template {self.text!r}")

    def fill(self, entity: str) -> str:
        """The prompt with ``entity`` in place of ``%s``."""
        return self.text.replace(PLACEHOLDER, entity, 1)

    def entity_span(self, entity: str) -> tuple[int, int]:
        """Character span ``[start, end)`` of the entity in :meth:`fill`'s output."""
        start = self.text.index(PLACEHOLDER)
        return start, start + len(entity)


@dataclass(frozen=True)
class SourceContext:
    """A generic source sentence (RAVEL's Wikipedia fragments) with one ``%s`` for the entity."""

    text: str
    """The sentence fragment with ``%s`` where an entity goes."""
    split: Split
    """Split of the fragment."""
    entity: str | None = None
    """The entity the fragment originally mentioned (None when unknown)."""

    def __post_init__(self) -> None:
        check_template(self.text, "source context")
        check_split(self.split, f"source context {self.text!r}")

    def fill(self, entity: str) -> str:
        return self.text.replace(PLACEHOLDER, entity, 1)


@dataclass
class RavelDomain:
    """One RAVEL entity type: entities, their attribute values, templates, splits, contexts."""

    name: str
    """Entity type, e.g. ``"city"``."""
    entity_attributes: dict[str, dict[str, str]]
    """``{entity: {attribute: value}}``; missing or empty values are left out."""
    entity_split: dict[str, Split]
    """``{entity: split}`` for every entity."""
    templates: dict[str, list[Template]]
    """``{attribute: templates}``; the attributes of the domain are its keys."""
    contexts: list[SourceContext] = field(default_factory=list)
    """Generic source sentences (Wikipedia fragments for real RAVEL)."""
    source: str = "ravel"
    """Where the data came from (``"ravel"`` or ``"geonames"``)."""

    def __post_init__(self) -> None:
        if not self.templates:
            raise ValueError(f"domain {self.name!r} has no templates")
        missing = sorted(set(self.entity_attributes) - set(self.entity_split))
        if missing:
            raise ValueError(
                f"domain {self.name!r}: {len(missing)} entities have no split, e.g. {missing[:3]}"
            )
        for attribute, templates in self.templates.items():
            for template in templates:
                if template.attribute != attribute:
                    raise ValueError(
                        f"domain {self.name!r}: template {template.text!r} is listed under "
                        f"{attribute!r} but asks about {template.attribute!r}"
                    )
        for entity, split in self.entity_split.items():
            check_split(split, f"domain {self.name!r}, entity {entity!r}")

    @property
    def attributes(self) -> tuple[str, ...]:
        """Attributes with templates, in file order."""
        return tuple(self.templates)

    def check_attribute(self, attribute: str) -> None:
        """Raise ``ValueError`` for an attribute the domain does not have."""
        if attribute not in self.templates:
            raise ValueError(
                f"unknown attribute {attribute!r} for domain {self.name!r}; "
                f"known attributes: {', '.join(self.attributes)}"
            )

    def entities(self, split: Split | None = None) -> list[str]:
        """Entities (of one split), sorted."""
        return sorted(e for e, s in self.entity_split.items() if split is None or s == split)

    def has_value(self, entity: str, attribute: str) -> bool:
        self.check_attribute(attribute)
        return bool(self.entity_attributes.get(entity, {}).get(attribute))

    def value(self, entity: str, attribute: str) -> str:
        """The stored value; ``ValueError`` for an unknown entity/attribute or a missing value."""
        self.check_attribute(attribute)
        if entity not in self.entity_split:
            raise ValueError(f"unknown entity {entity!r} for domain {self.name!r}")
        value = self.entity_attributes.get(entity, {}).get(attribute)
        if not value:
            raise ValueError(
                f"entity {entity!r} of domain {self.name!r} has no value for "
                f"attribute {attribute!r}"
            )
        return value

    def templates_for(self, attribute: str, split: Split | None = None) -> list[Template]:
        """Templates of one attribute (of one split), in file order."""
        self.check_attribute(attribute)
        return [t for t in self.templates[attribute] if split is None or t.split == split]

    def to_dict(self) -> dict:
        """Plain JSON-ready form (the inverse of :meth:`from_dict`)."""
        return {
            "name": self.name,
            "source": self.source,
            "entity_attributes": self.entity_attributes,
            "entity_split": self.entity_split,
            "templates": {
                a: [{"text": t.text, "split": t.split} for t in ts]
                for a, ts in self.templates.items()
            },
            "contexts": [
                {"text": c.text, "split": c.split, "entity": c.entity} for c in self.contexts
            ],
        }

    @classmethod
    def from_dict(cls, data: dict) -> "RavelDomain":
        return cls(
            name=data["name"],
            source=data.get("source", "ravel"),
            entity_attributes=data["entity_attributes"],
            entity_split=data["entity_split"],
            templates={
                a: [Template(t["text"], a, t["split"]) for t in ts]
                for a, ts in data["templates"].items()
            },
            contexts=[
                SourceContext(c["text"], c["split"], c.get("entity")) for c in data["contexts"]
            ],
        )

    @property
    def checksum(self) -> str:
        """sha256 of the domain's canonical JSON form: the data part of an instance cache key."""
        blob = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()


def parse_ravel_domain(domain: str, files: dict[str, object], source: str = "ravel") -> RavelDomain:
    """Build a :class:`RavelDomain` from the five parsed JSON objects (keyed by role)."""
    entity_attributes_raw = files["entity_attributes"]
    attribute_to_prompts = files["attribute_to_prompts"]
    prompt_to_split = files["prompt_to_split"]
    entity_to_split = files["entity_to_split"]
    wikipedia = files["wikipedia_prompts"]
    templates: dict[str, list[Template]] = {}
    for attribute, prompts in attribute_to_prompts.items():
        templates[attribute] = []
        for prompt in prompts:
            where = f"domain {domain!r}, attribute {attribute!r}"
            check_template(prompt, where)
            if prompt not in prompt_to_split:
                raise ValueError(f"{where}: template {prompt!r} has no split")
            templates[attribute].append(Template(prompt, attribute, prompt_to_split[prompt]))
    entity_attributes = {
        entity: {a: str(v) for a, v in values.items() if v not in (None, "")}
        for entity, values in entity_attributes_raw.items()
    }
    contexts = []
    for text, info in wikipedia.items():
        check_template(text, f"domain {domain!r}, wikipedia fragment")
        contexts.append(SourceContext(text, info["split"], info.get("entity")))
    return RavelDomain(
        name=domain,
        entity_attributes=entity_attributes,
        entity_split=dict(entity_to_split),
        templates=templates,
        contexts=contexts,
        source=source,
    )


def resolve_ravel_root(root: str | os.PathLike | None) -> Path:
    """The RAVEL location: ``root``, else ``$HYPERDAS_TL_RAVEL``; it must exist."""
    if root is None:
        env = os.environ.get(RAVEL_ENV_VAR)
        if not env:
            raise FileNotFoundError(
                f"No RAVEL data given: pass root= (a data.tgz or an unpacked folder), set "
                f"${RAVEL_ENV_VAR}, or call download_ravel()"
            )
        root = env
    path = Path(root).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"RAVEL data not found at {path}")
    return path


def read_json_from_dir(folder: Path, names: dict[str, str]) -> dict[str, object]:
    candidates = [folder, folder / "data"]
    result = {}
    for role, name in names.items():
        found = next((c / name for c in candidates if (c / name).is_file()), None)
        if found is None:
            raise FileNotFoundError(f"RAVEL file {name} not found in {folder} (or {folder}/data)")
        result[role] = parse_json(found.read_bytes(), str(found))
    return result


def parse_json(blob: bytes, where: str) -> object:
    """``json.loads`` with a ``ValueError`` that names the file (``where``) on bad input."""
    try:
        return json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{where} is not valid JSON ({error})") from error


ARCHIVE_ERRORS = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)
"""What a truncated, corrupt or non-tar archive raises while it is read."""


def read_json_from_tgz(archive: Path, names: dict[str, str]) -> dict[str, object]:
    wanted = {name: role for role, name in names.items()}
    result: dict[str, object] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar.getmembers():  # reads the whole archive: truncation shows here
                base = Path(member.name).name
                if member.isfile() and base in wanted:
                    handle = tar.extractfile(member)
                    if handle is None:
                        continue
                    result[wanted[base]] = parse_json(handle.read(), f"{archive}:{member.name}")
    except ARCHIVE_ERRORS as error:
        raise ValueError(
            f"RAVEL archive {archive} is truncated, corrupt or not a .tgz "
            f"({type(error).__name__}: {error}); download it again (download_ravel())"
        ) from error
    missing = [name for name, role in wanted.items() if role not in result]
    if missing:
        raise FileNotFoundError(f"RAVEL archive {archive} lacks {', '.join(sorted(missing))}")
    return result


def load_ravel(domain: str, root: str | os.PathLike | None = None) -> RavelDomain:
    """Load one RAVEL entity type.

    Args:
        domain: one of :data:`RAVEL_DOMAINS`.
        root: ``data.tgz`` or a folder holding the JSON files (directly or under ``data/``);
            default ``$HYPERDAS_TL_RAVEL``.

    Raises:
        ValueError: unknown domain, a template without exactly one ``%s``, a bad split, a
            truncated / corrupt / non-tar archive, a checksum mismatch, invalid JSON (each
            message names the file).
        FileNotFoundError: no location given, or a file is missing.
    """
    if domain not in RAVEL_DOMAINS:
        raise ValueError(f"unknown RAVEL domain {domain!r}; known: {', '.join(RAVEL_DOMAINS)}")
    path = resolve_ravel_root(root)
    names = ravel_file_names(domain)
    if path.is_dir():
        files = read_json_from_dir(path, names)
    else:
        verify_ravel_archive(path)
        files = read_json_from_tgz(path, names)
    return parse_ravel_domain(domain, files)


def checksum_file_for(archive: Path) -> tuple[Path, str] | None:
    """``(file, expected sha256)`` from a checksum file beside ``archive``: ``<name>.sha256``
    or a ``SHA256`` / ``SHA256SUMS`` list in ``sha256sum`` format naming it; None if none."""
    for candidate in (
        archive.with_name(archive.name + ".sha256"),
        archive.with_name("SHA256"),
        archive.with_name("SHA256SUMS"),
    ):
        if not candidate.is_file():
            continue
        for line in candidate.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split()
            if not parts:
                continue
            named = parts[1].lstrip("*") if len(parts) > 1 else archive.name
            if named == archive.name and len(parts[0]) == 64:
                return candidate, parts[0].lower()
    return None


def verify_ravel_archive(archive: str | os.PathLike) -> str:
    """Check a local RAVEL archive's sha256; returns it.

    The published archive (:data:`RAVEL_SHA256`) passes. Any other file is checked against a
    checksum file beside it (:func:`checksum_file_for`) and refused on a mismatch; with none,
    a warning says the checksum could not be verified (a locally built archive, say).

    Raises:
        ValueError: the checksum file names another sha256.
    """
    archive = Path(archive)
    actual = file_sha256(archive)
    if actual == RAVEL_SHA256:
        return actual
    known = checksum_file_for(archive)
    if known is not None:
        source, expected = known
        if actual != expected:
            raise ValueError(
                f"checksum mismatch for RAVEL archive {archive}: {source} says {expected}, the "
                f"file has {actual} (truncated or altered? fetch it again)"
            )
        return actual
    logger.warning(
        "RAVEL archive %s is not the published data.tgz (sha256 %s) and has no checksum file "
        "beside it; its checksum could not be verified",
        archive,
        actual,
    )
    return actual


def download_ravel(
    url: str = RAVEL_URL, sha256: str = RAVEL_SHA256, *, force: bool = False
) -> Path:
    """Download RAVEL's ``data.tgz``, verify its sha256, unpack it into the cache; the folder.

    The result is keyed by the checksum (``cache_dir("ravel")/<sha256[:16]>``) and reused.
    ``url`` may be any URL ``urllib`` opens, ``file://`` included.

    Raises:
        ValueError: the downloaded file does not match ``sha256``.
    """
    target = cache_dir("ravel") / sha256[:16]
    if force and target.exists():
        shutil.rmtree(target)

    def fetch(tmp: Path) -> None:
        archive = tmp / "data.tgz"
        logger.info("Downloading RAVEL from %s", url)
        with urllib.request.urlopen(url) as response, open(archive, "wb") as handle:
            while chunk := response.read(1 << 20):
                handle.write(chunk)
        actual = file_sha256(archive)
        if actual != sha256:
            raise ValueError(
                f"checksum mismatch for RAVEL archive from {url}: expected {sha256}, got {actual}"
            )
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(tmp, filter="data")
        archive.unlink()

    return build_atomically(target, fetch)

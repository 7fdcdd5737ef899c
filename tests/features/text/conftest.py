"""Helpers for the QCF text tests: tiny taxonomies written as TOML files."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.text.taxonomy import Taxonomy, build_taxonomy, load_taxonomy, read_taxonomy_file


@pytest.fixture
def write_toml(tmp_path: Path):
    """Write ``body`` to ``tmp_path/name`` and return the path."""

    def write(name: str, body: str) -> Path:
        path = tmp_path / name
        path.write_text(body, encoding="utf-8")
        return path

    return write


@pytest.fixture
def make_taxonomy(write_toml):
    """A Taxonomy from TOML bodies, one per file: ``make_taxonomy(en='...', fr='...')``."""

    def make(**bodies: str) -> Taxonomy:
        paths = [write_toml(f"{name}.toml", body) for name, body in bodies.items()]
        return build_taxonomy(e for p in paths for e in read_taxonomy_file(p))

    return make


@pytest.fixture(scope="session")
def shipped() -> Taxonomy:
    return load_taxonomy()

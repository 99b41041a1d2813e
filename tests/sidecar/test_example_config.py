"""`arena.example.toml` documents every setting, and nothing else, and loads as it is."""

from __future__ import annotations

import re
import tomllib
from dataclasses import fields
from pathlib import Path

from sidecar.config_file import build_settings, environment_names, read_config_file
from sidecar.settings import SECTIONS, ArenaSettings, setting_of

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "arena.example.toml"
README = ROOT / "README.md"
_KEY_LINE = re.compile(r"^([a-z_]+) = ")
_SECTION_LINE = re.compile(r"^\[([a-z_]+)\]$")


def _documented_keys() -> dict[tuple[str, str], list[str]]:
    """(section, key) -> the comment lines just above the key."""
    found: dict[tuple[str, str], list[str]] = {}
    section, comments = "", []
    for line in EXAMPLE.read_text().splitlines():
        if match := _SECTION_LINE.match(line):
            section, comments = match.group(1), []
        elif line.startswith("#"):
            comments.append(line)
        elif match := _KEY_LINE.match(line):
            found[(section, match.group(1))] = comments
            comments = []
        else:
            comments = []
    return found


def test_the_example_has_exactly_the_fields_of_the_settings_models() -> None:
    document = tomllib.loads(EXAMPLE.read_text())
    assert list(document) == list(SECTIONS)
    for section, model in SECTIONS.items():
        assert list(document[section]) == [f.name for f in fields(model)], section


def test_the_example_loads_into_settings() -> None:
    settings = build_settings(read_config_file(EXAMPLE))
    assert isinstance(settings, ArenaSettings)
    assert settings.socket.owners == ()
    assert settings.pathfinder.base_tokens[0].hex() == "c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"


def test_every_key_has_a_comment_with_its_meaning_default_and_flag() -> None:
    documented = _documented_keys()
    for section, model in SECTIONS.items():
        for f in fields(model):
            comment = " ".join(documented[(section, f.name)])
            setting = setting_of(f)
            assert "Default:" in comment, (section, f.name)
            assert setting.flag in comment, (section, f.name)
            if setting.env is not None:
                assert setting.env in comment, (section, f.name)


def test_the_readme_names_the_config_option_and_every_environment_variable() -> None:
    readme = README.read_text()
    assert "--config" in readme
    assert "arena.example.toml" in readme
    for name in environment_names():
        assert name in readme

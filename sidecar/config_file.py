"""Settings from a TOML file, the environment and the command line, in that rising order.

A flag the user gave beats an environment variable, which beats the file, which beats
the model's default. Flags are registered with `argparse.SUPPRESS` as their default, so
a flag that was not given leaves no trace in the namespace. Every value goes through the
kind its field names (`sidecar.setting_values`); anything wrong is a `ConfigError` that
names the file, the section and the key, or the flag, or the environment variable.

Environment variables are read only for settings that may carry credentials (URLs with
a user and password); their values never appear in a message.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import MISSING, Field, fields
from pathlib import Path
from typing import Any, Final

from sidecar import setting_values as v
from sidecar.errors import ConfigError
from sidecar.settings import GLOBAL, SECTIONS, ArenaSettings, Setting, setting_of

CONFIG_DEST: Final = "config"
_BARE_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")

SectionValues = dict[str, dict[str, Any]]


def settings_fields() -> Iterator[tuple[str, str, Setting]]:
    """(section, key, setting) for every field of every section, in declaration order."""
    for section, model in SECTIONS.items():
        for f in fields(model):
            yield section, f.name, setting_of(f)


def environment_names() -> dict[str, str]:
    """Environment variable -> `[section] key` it sets."""
    return {s.env: f"[{sec}] {key}" for sec, key, s in settings_fields() if s.env is not None}


def shown_key(name: str) -> str:
    """A section or key as TOML would write it: bare when it can be, else quoted."""
    return name if _BARE_KEY.fullmatch(name) else json.dumps(name, ensure_ascii=False)


def _dest(section: str, key: str) -> str:
    return f"{section}.{key}"


def _from_file(setting: Setting, value: object) -> Any:
    kind = setting.kind
    if not kind.repeatable:
        return kind.from_file(value)
    if not isinstance(value, list):
        raise v.SettingValueError(f"an array of {kind.expected}s", value)
    return tuple(kind.from_file(item) for item in value)


def _section_values(source: str, section: str, table: object) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(source, f"[{section}]", "expected a table of settings")
    known = {f.name: setting_of(f) for f in fields(SECTIONS[section])}
    values: dict[str, Any] = {}
    for key, value in table.items():
        where = f"[{section}] {shown_key(key)}"
        if key not in known:
            raise ConfigError(source, where, f"unknown key (known: {', '.join(known)})")
        try:
            values[key] = _from_file(known[key], value)
        except v.SettingValueError as exc:
            raise ConfigError(source, where, str(exc)) from None
    return values


def config_values(document: Mapping[str, object], source: str) -> SectionValues:
    """The settings a parsed TOML document gives, checked and converted."""
    values: SectionValues = {}
    for section, table in document.items():
        if section not in SECTIONS:
            raise ConfigError(
                source,
                f"[{shown_key(section)}]",
                f"unknown section (known: {', '.join(SECTIONS)})",
            )
        values[section] = _section_values(source, section, table)
    return values


def parse_config_text(text: str, source: str) -> SectionValues:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, None, f"not valid TOML: {exc}") from None
    return config_values(document, source)


def read_config_file(path: Path) -> SectionValues:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(str(path), None, f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), None, "not UTF-8 text") from None
    return parse_config_text(text, str(path))


def environment_values(environ: Mapping[str, str]) -> SectionValues:
    """Settings given by environment variables; an empty variable counts as unset."""
    values: SectionValues = {}
    for section, key, setting in settings_fields():
        if setting.env is None or not environ.get(setting.env):
            continue
        try:
            value = setting.kind.from_text(environ[setting.env])
        except v.SettingValueError as exc:
            raise ConfigError(setting.env, None, str(exc)) from None
        values.setdefault(section, {})[key] = value
    return values


def _from_flag(setting: Setting, given: object) -> Any:
    if isinstance(given, bool):
        return given  # a switch: argparse already read it
    if isinstance(given, list):
        return tuple(setting.kind.from_text(text) for text in given)
    return setting.kind.from_text(str(given))


def flag_values(args: argparse.Namespace) -> SectionValues:
    """Settings given by flags: only those present in `args`, the ones the user typed."""
    values: SectionValues = {}
    for section, key, setting in settings_fields():
        dest = _dest(section, key)
        if not hasattr(args, dest):
            continue
        try:
            value = _from_flag(setting, getattr(args, dest))
        except v.SettingValueError as exc:
            raise ConfigError(setting.flag, None, str(exc)) from None
        values.setdefault(section, {})[key] = value
    return values


def merge(*layers: SectionValues) -> SectionValues:
    """Later layers win, key by key."""
    merged: SectionValues = {}
    for layer in layers:
        for section, values in layer.items():
            merged.setdefault(section, {}).update(values)
    return merged


def build_settings(values: SectionValues) -> ArenaSettings:
    return ArenaSettings(**{s: SECTIONS[s](**vals) for s, vals in values.items()})


def load_settings(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> ArenaSettings:
    """Flags over environment over `--config FILE` over defaults."""
    config: Path | None = getattr(args, CONFIG_DEST, None)
    file = read_config_file(config) if config is not None else {}
    env = environment_values(os.environ if environ is None else environ)
    return build_settings(merge(file, env, flag_values(args)))


def _default_text(f: Field[Any]) -> str:
    if f.default is not MISSING:
        default = f.default
    elif f.default_factory is not MISSING:
        default = f.default_factory()
    else:
        return ""
    if default is None or default == () or default is False:
        return ""
    return f" (default {default})"


def add_setting_flags(parser: argparse.ArgumentParser, command: str) -> None:
    """The flags of every setting `command` reads, and `--config` for a subcommand."""
    if command != GLOBAL:
        parser.add_argument(
            "--config",
            dest=CONFIG_DEST,
            type=Path,
            metavar="FILE.toml",
            help="read settings from this TOML file (flags and environment override it)",
        )
    for section, model in SECTIONS.items():
        for f in fields(model):
            setting = setting_of(f)
            if command not in setting.commands:
                continue
            env = f"; environment {setting.env}" if setting.env else ""
            help_text = (setting.help + _default_text(f) + env).replace("%", "%%")
            options: dict[str, Any] = {
                "dest": _dest(section, f.name),
                "default": argparse.SUPPRESS,
                "help": help_text,
            }
            if setting.kind is v.SWITCH:
                options["action"] = argparse.BooleanOptionalAction
            else:
                options["metavar"] = setting.metavar
                if setting.kind.repeatable:
                    options["action"] = "append"
            parser.add_argument(setting.flag, **options)

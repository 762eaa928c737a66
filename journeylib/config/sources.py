"""The ``sources.yaml`` configuration: which vendor exports to load and how to stitch identities.

See ``docs/sources.md``::

    version: 1
    sources:
      product:                 # source name: events.source, identity_map.source
        reader: mixpanel       # default: the name, when it is a reader
        files: [exports/mixpanel/*.jsonl]   # globs, relative to this file
        options: {timezone: Europe/Berlin}
      salesforce:
        files: [exports/salesforce/*.csv]
    identity:
      account_sources: [salesforce]
      plus_addressing: false

:func:`journeylib.store.sources.ingest_sources` loads what it names.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from journeylib.config.eventmap import EventRule
from journeylib.config.loader import allowed_keys, parse_yaml, read_yaml, validate_config
from journeylib.exceptions import ConfigError, SourceFormatError
from journeylib.io.registry import reader_names
from journeylib.store.identity import IdentityOptions

__all__ = ["ReaderOptions", "SourceConfig", "SourcesConfig"]

if TYPE_CHECKING:
    ReaderName = str
else:
    ReaderName = Literal[reader_names()]  # the reader names as a Literal: pydantic lists them when a name is wrong
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class ReaderOptions(BaseModel):
    """Options of a reader (the ``options`` of a source).

    Parameters
    ----------
    timezone : str, optional
        Mixpanel only: IANA zone in which the export's epoch times are local.
    account_id_properties : list of str, optional
        Mixpanel and Amplitude: property names holding an explicit CRM account id.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str | None = None
    account_id_properties: tuple[str, ...] | None = None


class SourceConfig(BaseModel):
    """One source of ``sources.yaml``.

    Parameters
    ----------
    reader : str, optional
        One of :func:`journeylib.io.registry.reader_names`; defaults to the
        source's name.
    files : list of str
        File paths or globs, relative to the configuration file.
    options : ReaderOptions
        Reader options.
    events : list of journeylib.config.eventmap.EventRule
        Rules renaming this source's events (e.g. a won Salesforce renewal
        opportunity → ``renewal``), applied in order while reading.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    reader: ReaderName | None = None
    files: tuple[str, ...] = Field(min_length=1)
    options: ReaderOptions = ReaderOptions()
    events: tuple[EventRule, ...] = ()


class SourcesConfig(BaseModel):
    """The ``sources.yaml`` configuration: vendor sources and identity settings.

    Parameters
    ----------
    version : int
        Schema version, 1.
    sources : dict of str to SourceConfig
        Source name (lower case, digits, ``_``) → its reader and files.
    identity : journeylib.store.identity.IdentityOptions
        How ids are resolved.
    base_dir : pathlib.Path
        Folder relative file globs are resolved from (the file's folder; the
        working directory for a dict). Not a YAML key.

    Examples
    --------
    >>> cfg = SourcesConfig.from_yaml({"sources": {"mixpanel": {"files": ["events.jsonl"]}}})
    >>> cfg.reader_of("mixpanel")
    'mixpanel'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    sources: dict[str, SourceConfig] = Field(min_length=1)
    identity: IdentityOptions = IdentityOptions()
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)

    @field_validator("sources")
    @classmethod
    def _names(cls, value: dict[str, SourceConfig]) -> dict[str, SourceConfig]:
        bad = [k for k in value if not _NAME_RE.match(k)]
        if bad:
            msg = f"source name(s) {bad} must be lower case letters, digits and _ (starting with a letter)"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _readers(self) -> SourcesConfig:
        readers = reader_names()
        problems = []
        for name, src in self.sources.items():
            if src.reader is None and name not in readers:
                problems.append(f"sources.{name}.reader: required because {name!r} is not a reader name; allowed readers are {', '.join(readers)}")
            reader = src.reader or name
            if src.options.timezone and reader != "mixpanel":
                problems.append(f"sources.{name}.options.timezone: only the mixpanel reader takes a timezone (this source uses {reader})")
            if src.options.account_id_properties and reader not in ("mixpanel", "amplitude"):
                problems.append(f"sources.{name}.options.account_id_properties: only mixpanel and amplitude take it (this source uses {reader})")
        unknown = [s for s in (self.identity.account_sources or ()) if s not in self.sources]
        if unknown:
            problems.append(f"identity.account_sources: unknown source(s) {unknown}; the sources are {', '.join(self.sources)}")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def reader_of(self, name: str) -> str:
        """Return the reader of source *name*."""
        return self.sources[name].reader or name

    @classmethod
    def from_yaml(cls, src: str | Path | Mapping[str, Any]) -> SourcesConfig:
        """Build the configuration from a YAML file, YAML text or a dict.

        Parameters
        ----------
        src : str, pathlib.Path or dict
            A path to ``sources.yaml`` (a ``str`` naming an existing file or
            ending in ``.yaml``/``.yml`` is a path), YAML text, or the parsed
            mapping.

        Returns
        -------
        SourcesConfig
            The validated configuration.

        Raises
        ------
        ConfigError
            Listing every problem, each naming its key (e.g.
            ``sources.mixpanel.fils``) and its line, what was found and what is
            allowed.
        """
        where = "<dict>"
        base = Path.cwd()
        lines: Mapping[tuple[str | int, ...], int] = {}
        if isinstance(src, Mapping):
            data: Any = dict(src)
        else:
            if isinstance(src, Path) or (isinstance(src, str) and "\n" not in src and (Path(src).exists() or src.endswith((".yaml", ".yml")))):
                path = Path(src)
                doc = read_yaml(path)
                base = path.resolve().parent
            else:
                doc = parse_yaml(str(src))
            data, where, lines = doc.data, doc.source, doc.lines
        keys = ", ".join(allowed_keys(cls))
        if not isinstance(data, dict):
            raise ConfigError([f"the top level must be a mapping with keys {keys}; found {type(data).__name__}"], source=where)
        if "base_dir" in data:
            at = f" (line {lines[('base_dir',)]})" if ("base_dir",) in lines else ""
            raise ConfigError([f"base_dir{at}: unknown key 'base_dir'; allowed keys here: {keys}"], source=where)
        return validate_config(cls, {**data, "base_dir": base}, source=where, lines=lines)

    def files_of(self, name: str) -> list[Path]:
        """Expand the globs of source *name* into sorted existing files.

        Parameters
        ----------
        name : str
            A source of this configuration.

        Returns
        -------
        list of pathlib.Path
            The files, each once, in the order of the globs (sorted within each).

        Raises
        ------
        SourceFormatError
            If a pattern matches no file (naming the key and the folder).
        """
        out: list[Path] = []
        for i, pattern in enumerate(self.sources[name].files):
            full = pattern if Path(pattern).is_absolute() else str(self.base_dir / pattern)
            found = sorted(Path(p) for p in glob.glob(full, recursive=True) if Path(p).is_file())
            if not found:
                msg = (
                    f"sources.{name}.files[{i}] = {pattern!r} matches no file (looked in {self.base_dir}). "
                    "Fix the path or glob in sources.yaml; nothing was loaded."
                )
                raise SourceFormatError(msg)
            out += [p for p in found if p not in out]
        return out

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
      product_user_id_fields: {salesforce: [App_User_ID__c]}

:func:`journeylib.store.sources.ingest_sources` loads what it names.
"""

from __future__ import annotations

import difflib
import glob
import re
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from journeylib.config.eventmap import EventRule
from journeylib.config.loader import KeyPath, allowed_keys, format_key_path, parse_yaml, read_yaml, validate_config
from journeylib.exceptions import ConfigError, SourceFormatError
from journeylib.io.registry import CATEGORIES, account_readers, reader_names, readers_taking, vendor_readers
from journeylib.store.identity import IdentityOptions

__all__ = ["ReaderOptions", "SourceConfig", "SourcesConfig", "sources_problems", "timezone_problem"]

if TYPE_CHECKING:
    ReaderName = str
    SourceKind = str
else:
    ReaderName = Literal[reader_names()]  # the reader names as a Literal: pydantic lists them when a name is wrong
    SourceKind = Literal[CATEGORIES]  # the kinds of an event source (journeylib.store.categories)
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class ReaderOptions(BaseModel):
    """Options of a reader (the ``options`` of a source).

    Parameters
    ----------
    timezone : str, optional
        IANA zone (``Europe/Berlin``) of times written without an offset:
        Mixpanel's epoch times, HubSpot's and Salesforce's dates and times.
        Checked against the zone database when the file is validated.
    date_order : {"day_first", "month_first"}, optional
        HubSpot and Salesforce: the order of ``03/04/2025``-style dates, when
        the file's own dates do not settle it (an ambiguous date is refused,
        never guessed).
    account_id_properties : list of str, optional
        Mixpanel and Amplitude: property names holding an explicit CRM account id.
    max_field_bytes : int, optional
        Every reader: longest field (a CSV field, a JSON string, a JSON
        Lines line), in bytes; default 1 MiB. A longer one quarantines its record.
    max_json_depth : int, optional
        Every JSON reader: deepest nesting of one record; default 64.
    max_decompressed_bytes : int, optional
        Mixpanel and Amplitude: most bytes one gzip stream or zip member
        inflates to; default 2 GiB. Past it the file is refused.
    max_compression_ratio : float, optional
        Mixpanel and Amplitude: highest inflated-to-compressed ratio of a
        gzip stream or zip member; default 200. Past it the file is refused.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str | None = None
    date_order: Literal["day_first", "month_first"] | None = None
    account_id_properties: tuple[str, ...] | None = None
    max_field_bytes: int | None = Field(default=None, gt=0)
    max_json_depth: int | None = Field(default=None, gt=0, le=10_000)
    max_decompressed_bytes: int | None = Field(default=None, gt=0)
    max_compression_ratio: float | None = Field(default=None, gt=1)


def timezone_problem(name: str) -> str | None:
    """Return why *name* is not an IANA time zone, with the closest names, or ``None`` when it is one.

    Parameters
    ----------
    name : str
        A zone name such as ``Europe/Berlin``.

    Returns
    -------
    str or None
        E.g. ``"unknown time zone 'Europe/Berln'; did you mean Europe/Berlin? ..."``.
    """
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        pass
    else:
        return None
    close = difflib.get_close_matches(name, sorted(zoneinfo.available_timezones()), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close[:-1]) + ' or ' if len(close) > 1 else ''}{close[-1]}? " if close else ""
    return f"unknown time zone {name!r}; {hint}use an IANA name such as Europe/Berlin, America/New_York or UTC"


def sources_problems(data: Any) -> list[tuple[KeyPath, str]]:
    """Return the problems of a ``sources.yaml`` that span its keys, each with its key path.

    The checks the per-key validation cannot make, run on the raw mapping so
    that they are reported together with every other problem: source names;
    a reader for each source whose name is not one; options only the source's
    reader takes; time zones that exist; file paths that are not empty; and
    ``identity.account_sources`` naming sources whose readers hold accounts,
    each once; ``identity.product_user_id_fields`` naming sources of the file
    that are not product-analytics sources. Values of the wrong type are left to the per-key validation.

    Parameters
    ----------
    data : object
        The parsed configuration (a mapping).

    Returns
    -------
    list of (tuple, str)
        ``(key path, what is wrong)``.
    """
    if not isinstance(data, Mapping):
        return []
    readers = vendor_readers()
    out: list[tuple[KeyPath, str]] = []
    sources = data.get("sources")
    sources = sources if isinstance(sources, Mapping) else {}
    for name, src in sources.items():
        at: KeyPath = ("sources", str(name))
        if not isinstance(name, str) or not _NAME_RE.match(name):
            out.append((at, f"source name {name!r} must be lower case letters, digits and _ (starting with a letter)"))
        if not isinstance(src, Mapping):
            continue
        reader = src.get("reader")
        if reader is None and name not in readers:
            out.append(((*at, "reader"), f"required because {name!r} is not a reader name; allowed readers are {', '.join(readers)}"))
        reader = reader if reader is not None else name
        files = src.get("files")
        if isinstance(files, list | tuple):
            for i, f in enumerate(files):
                if isinstance(f, str) and not f.strip():
                    out.append(((*at, "files", i), "an empty path; give a file path or glob, relative to sources.yaml"))
        options = src.get("options")
        if not isinstance(options, Mapping):
            continue
        for key, value in options.items():
            takers = readers_taking(str(key))
            if value is not None and takers and reader in readers and reader not in takers:
                who = f"the {takers[0]} reader takes" if len(takers) == 1 else f"the {', '.join(takers[:-1])} and {takers[-1]} readers take"
                out.append(((*at, "options", str(key)), f"only {who} {key} (this source uses {reader})"))
        tz = options.get("timezone")
        if isinstance(tz, str) and (why := timezone_problem(tz)):
            out.append(((*at, "options", "timezone"), why))
    identity = data.get("identity")
    wanted = identity.get("account_sources") if isinstance(identity, Mapping) else None
    if isinstance(wanted, list | tuple):
        unknown = [s for s in wanted if s not in sources]
        if unknown:
            out.append((("identity", "account_sources"), f"unknown source(s) {unknown}; the sources are {', '.join(map(str, sources))}"))
        seen: set[Any] = set()
        for i, s in enumerate(wanted):
            src = sources.get(s) if isinstance(s, str) else None
            reader = (src.get("reader") or s) if isinstance(src, Mapping) else None
            if s in seen:
                out.append((("identity", "account_sources", i), f"source {s!r} is listed twice"))
            elif reader in readers and not readers[reader].is_account_source:
                out.append(
                    (("identity", "account_sources", i), f"source {s!r} (reader {reader}) holds no accounts; account sources use the readers {', '.join(account_readers())}")
                )
            seen.add(s)
    fields = identity.get("product_user_id_fields") if isinstance(identity, Mapping) else None
    if isinstance(fields, Mapping):
        for s in fields:
            src = sources.get(s) if isinstance(s, str) else None
            reader = (src.get("reader") or s) if isinstance(src, Mapping) else None
            if src is None:
                out.append((("identity", "product_user_id_fields", str(s)), f"unknown source {s!r}; the sources are {', '.join(map(str, sources))}"))
            elif reader in readers and readers[reader].category == "product":
                out.append(
                    (("identity", "product_user_id_fields", str(s)), f"source {s!r} (reader {reader}) is a product-analytics source; name the source whose contacts hold the product user id")
                )
    return out


def _line_of(path: KeyPath, lines: Mapping[KeyPath, int]) -> str:
    for n in range(len(path), 0, -1):
        if path[:n] in lines:
            return f" (line {lines[path[:n]]})"
    return ""


_LINE_NOTE = re.compile(r" \(line \d+\)")


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
    source_kinds : dict of str to str
        Event source name → kind (``product``, ``crm``, ``support``,
        ``email``), for any source, these or canonical ones (``braze: email``).
        A source not listed takes its reader's category, else its name's,
        else ``product`` (:mod:`journeylib.store.categories`).
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
    source_kinds: dict[str, SourceKind] = Field(default_factory=dict)
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)

    @model_validator(mode="after")
    def _across_keys(self) -> SourcesConfig:
        data = self.model_dump(mode="python", exclude={"base_dir"}, exclude_none=True)
        problems = sources_problems(data)
        if problems:
            raise ValueError("\n".join(f"{format_key_path(p)}: {text}" for p, text in problems))
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
        # the checks across keys run on the raw data too, so they are reported with every other problem
        across = [f"{format_key_path(p)}{_line_of(p, lines)}: {text}" for p, text in sources_problems(data)]
        try:
            cfg = validate_config(cls, {**data, "base_dir": base}, source=where, lines=lines)
        except ConfigError as exc:
            known = {_LINE_NOTE.sub("", m) for m in across}
            rest = [m for m in exc.problems if _LINE_NOTE.sub("", m) not in known]
            raise ConfigError(rest + across, source=where) from None
        if across:  # pragma: no cover (the model's own check reports them first)
            raise ConfigError(across, source=where)
        return cfg

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

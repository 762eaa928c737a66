"""Webhook endpoints for alert delivery: where alerts go, how they are signed, how often delivery is retried.

A delivery file lists the endpoints (or pass the same mapping as a dict)::

    endpoints:
      - name: cs-hub                  # part of every idempotency key: keep it stable
        url: https://hooks.example.com/journeylib
        kind: json                    # json (generic) or slack (Slack-compatible)
        secret_env: JOURNEYLIB_HOOK_SECRET   # HMAC-SHA256 key, read from the environment
        timeout_s: 10
        max_attempts: 5
        backoff: {base_s: 2, factor: 2, max_s: 300, jitter: 0.5}
      - name: cs-slack
        url_env: JOURNEYLIB_SLACK_URL # Slack webhook URLs hold a token: keep them out of files too
        kind: slack

Secrets never live in the file: ``secret_env`` (and ``url_env``) name
environment variables, read when a delivery starts
(:meth:`Endpoint.secret`, :meth:`Endpoint.resolved_url`). A key such as
``secret:`` is refused like any unknown key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from journeylib.config.loader import parse_yaml, read_yaml, validate_config
from journeylib.exceptions import ConfigError

__all__ = ["ENV_NAME_PATTERN", "Backoff", "DeliveryConfig", "Endpoint", "EndpointKind", "check_url"]

#: Environment variable names accepted by ``secret_env`` and ``url_env``.
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
#: Endpoint names (they are part of the idempotency keys and of the store's rows).
_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"

EndpointKind = Literal["json", "slack"]

_HINTS = {
    "string_pattern_mismatch": (
        "not a valid name; endpoint names use letters, digits, '_', '-' or '.', and environment "
        "variable names letters, digits and '_' (not starting with a digit)"
    ),
}


class Backoff(BaseModel):
    """Exponential backoff with jitter between two attempts of one delivery.

    The wait after failed attempt *n* (1-based) is
    ``d = min(max_s, base_s * factor ** (n - 1))`` shrunk by a random share of
    at most *jitter*: ``d * (1 - jitter * u)`` with ``u`` uniform on [0, 1).
    ``jitter: 1`` is "full jitter" (anywhere in ``(0, d]``), ``jitter: 0`` none.
    A ``Retry-After`` header of the receiver (429, 503) lengthens the wait to
    what it asks, up to *max_s*.

    Attributes
    ----------
    base_s : float, default 1.0
        The wait after the first failed attempt, before jitter (seconds, > 0).
    factor : float, default 2.0
        Growth per attempt (>= 1).
    max_s : float, default 300.0
        The longest wait (seconds, >= base_s).
    jitter : float, default 0.5
        Largest share of the wait removed at random (0 to 1).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_s: float = Field(default=1.0, gt=0)
    factor: float = Field(default=2.0, ge=1)
    max_s: float = Field(default=300.0, gt=0)
    jitter: float = Field(default=0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Backoff:
        if self.max_s < self.base_s:
            msg = f"backoff.max_s ({self.max_s}) must be at least backoff.base_s ({self.base_s})"
            raise ValueError(msg)
        return self

    def ceiling(self, attempt: int) -> float:
        """Return the wait after failed attempt *attempt* before jitter, ``min(max_s, base_s * factor ** (attempt - 1))``.

        Parameters
        ----------
        attempt : int
            The failed attempt's number (1-based).

        Returns
        -------
        float
            Seconds.

        Examples
        --------
        >>> Backoff(base_s=2, factor=3, max_s=30).ceiling(3)
        18.0
        """
        if attempt < 1:
            msg = f"Backoff.ceiling: attempt must be 1 or more; got {attempt}"
            raise ValueError(msg)
        exponent = min(attempt - 1, 1000)  # factor ** 1000 overflows long after max_s caps it
        try:
            raw = self.base_s * self.factor**exponent
        except OverflowError:
            raw = self.max_s
        return float(min(self.max_s, raw))

    def delay(self, attempt: int, u: float) -> float:
        """Return the wait after failed attempt *attempt*, with the jitter draw *u*.

        Parameters
        ----------
        attempt : int
            The failed attempt's number (1-based).
        u : float
            A uniform draw on [0, 1).

        Returns
        -------
        float
            Seconds, in ``[ceiling * (1 - jitter), ceiling]``.

        Examples
        --------
        >>> Backoff(base_s=4, factor=2, max_s=60, jitter=0.5).delay(2, 0.5)
        6.0
        """
        if not 0 <= u < 1:
            msg = f"Backoff.delay: u must be a uniform draw in [0, 1); got {u}"
            raise ValueError(msg)
        return self.ceiling(attempt) * (1 - self.jitter * u)


class Endpoint(BaseModel):
    """One webhook endpoint alerts are delivered to.

    Attributes
    ----------
    name : str
        The endpoint's name; with the alert id it makes the idempotency key
        of a delivery, so renaming an endpoint makes its alerts new
        deliveries (sent again).
    url : str, optional
        The ``http://`` or ``https://`` URL alerts are POSTed to.
    url_env : str, optional
        Instead of *url*: the environment variable holding it (Slack
        webhook URLs carry a token). Exactly one of the two is given.
    kind : {"json", "slack"}, default "json"
        ``json``: the alert as a JSON object; ``slack``: a Slack-compatible
        message (``text`` and ``blocks``).
    secret_env : str, optional
        The environment variable holding the HMAC-SHA256 key the body is
        signed with. Required for ``json``; optional for ``slack`` (Slack's
        own incoming webhooks do not check signatures, a relay may).
    timeout_s : float, default 10.0
        Socket timeout of one attempt: connecting, and each wait for data.
    max_attempts : int, default 5
        Attempts per delivery (and per redelivery) before it is dead-lettered.
    backoff : Backoff
        Waits between attempts.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_NAME_PATTERN)
    url: str | None = None
    url_env: str | None = Field(default=None, pattern=ENV_NAME_PATTERN)
    kind: EndpointKind = "json"
    secret_env: str | None = Field(default=None, pattern=ENV_NAME_PATTERN)
    timeout_s: float = Field(default=10.0, gt=0, le=600)
    max_attempts: int = Field(default=5, ge=1, le=100)
    backoff: Backoff = Field(default_factory=Backoff)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None:
            check_url(value)
        return value

    @model_validator(mode="after")
    def _one_url_and_a_secret(self) -> Endpoint:
        if (self.url is None) == (self.url_env is None):
            msg = f"endpoint {self.name!r}: give exactly one of `url` and `url_env` (an environment variable holding the URL)"
            raise ValueError(msg)
        if self.kind == "json" and self.secret_env is None:
            msg = (
                f"endpoint {self.name!r}: a json endpoint needs `secret_env`, the environment variable holding its "
                "HMAC-SHA256 key (secrets are never written in the file)"
            )
            raise ValueError(msg)
        return self

    def resolved_url(self, environ: Mapping[str, str] | None = None) -> str:
        """Return the URL: *url*, or the value of the *url_env* variable.

        Parameters
        ----------
        environ : mapping, optional
            The environment (default ``os.environ``).

        Returns
        -------
        str
            An ``http(s)://`` URL.

        Raises
        ------
        ConfigError
            If *url_env* is unset or empty, or its value is not an http(s) URL.
        """
        if self.url is not None:
            return self.url
        env = os.environ if environ is None else environ
        value = env.get(str(self.url_env), "")
        if not value:
            raise ConfigError([f"endpoint {self.name!r}: environment variable {self.url_env} (url_env) is not set"])
        try:
            check_url(value)
        except ValueError as exc:
            raise ConfigError([f"endpoint {self.name!r}: ${self.url_env} (url_env): {exc}"]) from None
        return value

    def secret(self, environ: Mapping[str, str] | None = None) -> bytes | None:
        """Return the signing key from the *secret_env* variable (UTF-8), or None when the endpoint has none.

        Parameters
        ----------
        environ : mapping, optional
            The environment (default ``os.environ``).

        Returns
        -------
        bytes or None
            The key.

        Raises
        ------
        ConfigError
            If *secret_env* is named but unset or empty.
        """
        if self.secret_env is None:
            return None
        env = os.environ if environ is None else environ
        value = env.get(self.secret_env, "")
        if not value:
            msg = f"endpoint {self.name!r}: environment variable {self.secret_env} (secret_env) is not set or empty"
            raise ConfigError([msg])
        return value.encode("utf-8")


def check_url(value: str) -> None:
    """Raise ``ValueError`` unless *value* is an ``http://`` or ``https://`` URL with a host.

    Parameters
    ----------
    value : str
        The URL.

    Raises
    ------
    ValueError
        Naming what is allowed.
    """
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        msg = "must be an http:// or https:// URL with a host"
        raise ValueError(msg)


class DeliveryConfig(BaseModel):
    """The endpoints of a delivery file (see the module's documentation for its layout).

    Attributes
    ----------
    endpoints : tuple of Endpoint
        At least one, with distinct names.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoints: tuple[Endpoint, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct_names(self) -> DeliveryConfig:
        seen: dict[str, int] = {}
        for i, endpoint in enumerate(self.endpoints):
            if endpoint.name in seen:
                msg = f"endpoints[{i}].name: {endpoint.name!r} is already the name of endpoints[{seen[endpoint.name]}]; names must be distinct"
                raise ValueError(msg)
            seen[endpoint.name] = i
        return self

    @classmethod
    def from_yaml(cls, source: str | os.PathLike[str] | Mapping[str, Any]) -> DeliveryConfig:
        """Load and validate a delivery file, YAML text or a dict.

        Parameters
        ----------
        source : str, os.PathLike or mapping
            A path (a ``str`` naming an existing file or ending in
            ``.yaml``/``.yml`` is a path), YAML text, or the parsed mapping.

        Returns
        -------
        DeliveryConfig
            The validated, immutable configuration.

        Raises
        ------
        ConfigError
            Listing every problem at once with its key path and line: unknown
            keys (``secret:`` included), a missing or doubled URL, a json
            endpoint without ``secret_env``, a URL that is not http(s),
            repeated names.

        Examples
        --------
        >>> cfg = DeliveryConfig.from_yaml({"endpoints": [{"name": "hub", "url": "https://h.example/x", "secret_env": "HUB_KEY"}]})
        >>> cfg.endpoints[0].max_attempts
        5
        """
        if isinstance(source, Mapping):
            return validate_config(cls, dict(source), source="<dict>", hints=_HINTS)
        text = str(source)
        if isinstance(source, os.PathLike) or ("\n" not in text and (Path(text).exists() or text.endswith((".yaml", ".yml")))):
            doc = read_yaml(Path(text), what="delivery file")
        else:
            doc = parse_yaml(text)
        if not isinstance(doc.data, dict):
            found = "nothing" if doc.data is None else type(doc.data).__name__
            raise ConfigError([f"the delivery file must be a mapping with the key `endpoints`; found {found}"], doc.source)
        return validate_config(cls, doc.data, source=doc.source, lines=doc.lines, hints=_HINTS)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeliveryConfig:
        """Validate a delivery configuration given as a dict; see :meth:`from_yaml`.

        Parameters
        ----------
        data : mapping
            The configuration's keys.

        Returns
        -------
        DeliveryConfig
            The validated configuration.
        """
        return cls.from_yaml(data)

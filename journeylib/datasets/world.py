"""The seeded synthetic SaaS world: a B2B project-management product with planted truths.

:func:`synthesize` simulates accounts of a fictional product (Planwise) from
trial sign-up to conversion, expansion, renewal and churn, with their users,
product events, support tickets, lifecycle e-mails and CRM stage changes, and
writes them as canonical tables (see :mod:`journeylib.store.schema`) plus a
``truth.json`` describing what was planted and what was realised.

How it is generated
-------------------
Customers are simulated in chunks of ``chunk_customers``; chunk *k* draws
from its own generator ``numpy.random.default_rng([seed, k])`` and is written
before the next one is generated, so memory stays bounded. Within a chunk
everything is vectorised across customers: each customer's latent state
(segment, archetype, setup time, conversion, churn time, ...) is drawn first,
then event streams are expanded with ``numpy.repeat`` from per-customer
counts (sessions are a piecewise-constant Poisson process). Nothing loops over
customers or events in Python.

The planted truths hold *by construction* — they are the probabilities the
simulation draws from — and the realised values in this particular world are
computed from exactly what was written. Outcomes are censored honestly at
``as_of``: nothing after it is written, accounts still paying are not churned,
and trials that have not ended have not converted.

Where the parts are: the parameters and vocabularies in
:mod:`journeylib.datasets.parameters`, the dates and sign-up times in
:mod:`journeylib.datasets.timeline`, the simulation of a chunk in
:mod:`journeylib.datasets.simulation`, the planted and realised truths in
:mod:`journeylib.datasets.truth`; this module runs the chunks and writes the
files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from journeylib.datasets.experiments import ExperimentTally, assignment_table
from journeylib.datasets.files import FILE_FORMATS, TRUTH_FILE, TableSink, arrow_schema, truth_schema
from journeylib.datasets.parameters import ARCHETYPES, PARAMS
from journeylib.datasets.simulation import Chunk, property_table, string_array, take
from journeylib.datasets.timeline import build_calendar, signup_times
from journeylib.datasets.truth import TruthTally, truth_summary
from journeylib.store.schema import ASSIGNMENTS, CUSTOMERS, EVENTS, MESSAGES, TICKETS, USERS

__all__ = ["SynthResult", "synthesize"]


@dataclass(frozen=True)
class SynthResult:
    """What :func:`synthesize` wrote.

    Attributes
    ----------
    out_dir : pathlib.Path
        The world's folder.
    files : dict of str to list of pathlib.Path
        The files of each canonical table (``customers``, ``users``,
        ``events``, ``tickets``, ``messages``); events have one part per chunk.
    counts : dict of str to int
        Rows written per canonical table.
    truth_path : pathlib.Path
        The ``truth.json`` file.
    as_of : pandas.Timestamp
        End of the observation window (UTC); nothing at or after it is written.
    truth_files : dict of str to pathlib.Path
        Latent truth tables: ``archetypes`` and ``ticket_labels``.
    assignments_path : pathlib.Path or None
        The canonical ``assignments`` file (the onboarding experiment's
        arms, :mod:`journeylib.datasets.experiments`).
    """

    out_dir: Path
    files: dict[str, list[Path]]
    counts: dict[str, int]
    truth_path: Path
    as_of: pd.Timestamp
    truth_files: dict[str, Path] = field(default_factory=dict)
    assignments_path: Path | None = None


_TABLE_FILES = ("customers", "users", "tickets", "messages")


def _validate(n_customers: int, seed: int, months: int, file_format: str, chunk_customers: int) -> None:
    if isinstance(n_customers, bool) or not isinstance(n_customers, int) or n_customers < 1:
        msg = f"synthesize(n_customers=...) must be a positive integer; got {n_customers!r}"
        raise ValueError(msg)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        msg = f"synthesize(seed=...) must be a non-negative integer; got {seed!r}"
        raise ValueError(msg)
    if isinstance(months, bool) or not isinstance(months, int) or months < 1:
        msg = f"synthesize(months=...) must be a positive integer; got {months!r}"
        raise ValueError(msg)
    if file_format not in FILE_FORMATS:
        msg = f"synthesize(file_format=...) must be one of {list(FILE_FORMATS)}; got {file_format!r}"
        raise ValueError(msg)
    if isinstance(chunk_customers, bool) or not isinstance(chunk_customers, int) or chunk_customers < 1:
        msg = f"synthesize(chunk_customers=...) must be a positive integer; got {chunk_customers!r}"
        raise ValueError(msg)


def synthesize(
    out_dir: str | Path,
    *,
    n_customers: int = 2000,
    seed: int = 0,
    start: str = "2025-01-06",
    months: int = 12,
    file_format: str = "parquet",
    chunk_customers: int = 5000,
) -> SynthResult:
    """Simulate the synthetic SaaS world and write it as canonical tables plus ``truth.json``.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        Folder to write into (created if needed). Files of an earlier world
        in the same folder are overwritten; stale event parts are removed.
    n_customers : int, default 2000
        Number of accounts (all start as trials).
    seed : int, default 0
        Seed; the same ``(seed, n_customers, start, months, chunk_customers)``
        gives byte-identical files.
    start : str, default "2025-01-06"
        Start of the observation window (UTC); sign-ups are spread over it.
    months : int, default 12
        Length of the window; ``as_of`` is ``start + months``.
    file_format : {"parquet", "csv"}, default "parquet"
        File format of the tables.
    chunk_customers : int, default 5000
        Customers simulated (and held in memory) at once; one event part per
        chunk.

    Returns
    -------
    SynthResult
        ``out_dir``, ``files`` (table -> paths), ``counts`` (table -> rows),
        ``truth_path``, ``as_of`` and ``truth_files``. The files hold:

        ``customers.<fmt>``
            ``customer_id``, ``name``, ``domain``, ``segment``, ``plan``,
            ``signup_at``, ``converted_at``, ``churned_at``, ``renewal_at``,
            ``mrr``, ``properties``.
        ``users.<fmt>``
            ``user_id``, ``customer_id``, ``email``, ``role``,
            ``created_at``, ``properties``.
        ``events/part-NNNNN.<fmt>``
            ``event_id``, ``customer_id``, ``user_id``, ``timestamp``,
            ``event``, ``source``, ``properties``.
        ``tickets.<fmt>``
            ``ticket_id``, ``customer_id``, ``user_id``, ``created_at``,
            ``solved_at``, ``channel``, ``subject``, ``body``, ``status``,
            ``priority``, ``satisfaction``, ``properties``.
        ``messages.<fmt>``
            ``message_id``, ``customer_id``, ``user_id``, ``timestamp``,
            ``campaign``, ``status``, ``properties``.
        ``assignments.<fmt>``
            ``assignment_id``, ``customer_id``, ``user_id`` (empty),
            ``experiment``, ``variant``, ``assigned_at``, ``properties``
            (the designed split): the onboarding experiment's arms.
        ``archetypes.<fmt>``, ``ticket_labels.<fmt>``
            Latent truths (see :func:`load_archetypes`,
            :func:`load_ticket_labels`).

    Raises
    ------
    ValueError
        If an argument is out of range or *file_format* is unknown.

    Examples
    --------
    >>> import tempfile
    >>> result = synthesize(tempfile.mkdtemp(), n_customers=50, seed=1)
    >>> result.counts["customers"]
    50
    """
    _validate(n_customers, seed, months, file_format, chunk_customers)
    p = PARAMS
    out = Path(out_dir)
    events_dir = out / "events"
    events_dir.mkdir(parents=True, exist_ok=True)
    # Remove what an earlier run (other size or format) left behind, so the folder holds one world.
    stale = list(events_dir.glob("part-*.*"))
    for name in (*_TABLE_FILES, "assignments", "archetypes", "ticket_labels"):
        stale += [out / f"{name}.{other}" for other in FILE_FORMATS]
    for path in sorted(stale):
        path.unlink(missing_ok=True)
    cal = build_calendar(start, months, p)
    signup = signup_times(seed, n_customers, cal, p)
    id_width = max(6, len(str(n_customers)))
    big_width = id_width + 4
    ext = file_format
    sinks = {
        "customers": TableSink(out / f"customers.{ext}", arrow_schema(CUSTOMERS), ext),
        "users": TableSink(out / f"users.{ext}", arrow_schema(USERS), ext),
        "tickets": TableSink(out / f"tickets.{ext}", arrow_schema(TICKETS), ext),
        "messages": TableSink(out / f"messages.{ext}", arrow_schema(MESSAGES), ext),
        "assignments": TableSink(out / f"assignments.{ext}", arrow_schema(ASSIGNMENTS), ext),
        "archetypes": TableSink(out / f"archetypes.{ext}", truth_schema("archetypes"), ext),
        "ticket_labels": TableSink(out / f"ticket_labels.{ext}", truth_schema("ticket_labels"), ext),
    }
    props = property_table(p)
    tally = TruthTally()
    experiment_tally = ExperimentTally()
    event_files: list[Path] = []
    seq = {"event": 0, "ticket": 0, "message": 0, "send": 0}
    events_schema = arrow_schema(EVENTS)
    try:
        for k, lo in enumerate(range(0, n_customers, chunk_customers)):
            hi = min(n_customers, lo + chunk_customers)
            rng = np.random.default_rng([seed, k])
            ch = Chunk(rng, first=lo, signup=signup[lo:hi], cal=cal, p=p, seed=seed, id_width=id_width, props=props, tally=tally)
            ch.customers()
            ch.identity()
            ch.users()
            ch.crm_events()
            ch.experiment_events()
            ch.setup_events()
            ch.integration_events()
            ch.sessions()
            messages, seq["send"], seq["message"] = ch.emails(seq["send"], seq["message"], big_width)
            tickets, labels, seq["ticket"] = ch.tickets(seq["ticket"], big_width)
            ch.tally_truths()
            sinks["customers"].write(ch.customer_table())
            sinks["users"].write(ch.user_table())
            sinks["messages"].write(messages)
            sinks["tickets"].write(tickets)
            sinks["ticket_labels"].write(labels)
            sinks["assignments"].write(
                assignment_table(
                    customer_ids=ch.customer_ids, arm=ch.arm, signup=ch.t0, setup=ch.setup, as_of=cal.as_of,
                    window_days=p.trial_days, tally=experiment_tally,
                )
            )
            sinks["archetypes"].write(pa.table({"customer_id": ch.customer_ids, "archetype": take(string_array(ARCHETYPES), ch.arch)}))
            events = ch.events.table(props[0], seq["event"], ch.customer_ids, ch.user_ids)
            seq["event"] += events.num_rows
            path = events_dir / f"part-{k:05d}.{ext}"
            part = TableSink(path, events_schema, ext)
            try:
                part.write(events)
            finally:
                part.close()
            event_files.append(path)
            del ch, events, messages, tickets, labels
    finally:
        for sink in sinks.values():
            sink.close()
    counts = {name: sinks[name].rows for name in ("customers", "users", "tickets", "messages")}
    counts["events"] = seq["event"]
    counts = {name: counts[name] for name in ("customers", "users", "events", "tickets", "messages")}
    files = {name: [sinks[name].path] for name in ("customers", "users", "tickets", "messages")}
    files["events"] = event_files
    files = {name: files[name] for name in ("customers", "users", "events", "tickets", "messages")}
    truth_files = {name: sinks[name].path for name in ("archetypes", "ticket_labels")}
    truth = truth_summary(
        p=p, cal=cal, tally=tally, seed=seed, n=n_customers, start=str(start), months=months, chunk=chunk_customers,
        fmt=file_format,
        files={k: [f.relative_to(out).as_posix() for f in v] for k, v in files.items()},
        truth_files={k: v.relative_to(out).as_posix() for k, v in truth_files.items()},
        counts=counts,
        assignments={"file": sinks["assignments"].path.relative_to(out).as_posix(), "rows": sinks["assignments"].rows,
                     **experiment_tally.realised()},
    )
    truth_path = out / TRUTH_FILE
    truth_path.write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    return SynthResult(
        out_dir=out,
        files=files,
        counts=counts,
        truth_path=truth_path,
        as_of=pd.Timestamp(cal.as_of, unit="s", tz="UTC"),
        truth_files=truth_files,
        assignments_path=sinks["assignments"].path,
    )

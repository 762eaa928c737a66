"""The seeded synthetic SaaS world and its loaders.

:func:`synthesize` writes a world of trial and paying accounts of a fictional
project-management product, with planted truths recorded in ``truth.json``;
:func:`load_world`, :func:`load_truth`, :func:`load_archetypes` and
:func:`load_ticket_labels` read it back.

Examples
--------
>>> import tempfile
>>> from journeylib.datasets import synthesize, load_world, load_truth
>>> out = tempfile.mkdtemp()
>>> result = synthesize(out, n_customers=50, seed=1)
>>> sorted(load_world(out))
['customers', 'events', 'messages', 'tickets', 'users']
>>> load_truth(out)["n_customers"]
50
"""

from __future__ import annotations

from journeylib.datasets.files import FILE_FORMATS, load_archetypes, load_ticket_labels, load_truth, load_world
from journeylib.datasets.parameters import GENERATOR_VERSION, WorldParameters
from journeylib.datasets.second_world import SecondWorldResult, synthesize_second_world
from journeylib.datasets.world import SynthResult, synthesize

__all__ = [
    "FILE_FORMATS",
    "GENERATOR_VERSION",
    "SecondWorldResult",
    "SynthResult",
    "WorldParameters",
    "load_archetypes",
    "load_ticket_labels",
    "load_truth",
    "load_world",
    "synthesize",
    "synthesize_second_world",
]

"""Start a dashboard kernel under a memory bound: what the dashboards' kernelspec runs.

``journeylib dashboard --kernel-memory 2GiB`` writes a kernelspec named
:data:`KERNEL_NAME` into a private folder that it puts first on
``JUPYTER_PATH`` (:func:`write_kernelspec`), so every kernel Voila starts for a
notebook runs::

    python -m journeylib.reports.kernel_launcher --max-bytes N -m ipykernel_launcher -f {connection_file}

:func:`main` sets ``RLIMIT_DATA`` (soft and hard) to *N* bytes and then
replaces itself (``os.execv``, same pid) with the rest of the command line,
which inherits the limit; the module runs as ``python -m`` would run it, with
the modules of :data:`SKIPPED_IMPORTS` marked absent (they cost import time
and nothing a dashboard uses).

Why ``RLIMIT_DATA`` (Linux 4.7 or later): it bounds the process's private
writable memory (``VmData`` in ``/proc/<pid>/status``: the heap, anonymous
``mmap`` and thread stacks), which contains everything the kernel itself
makes resident apart from shared libraries and files. ``RLIMIT_AS`` would
count address space that is only reserved (a dashboard kernel has
``VmSize`` ≈ 1.6–2.1 GiB after its widget cell for 250–430 MiB resident, and
≈ 35 GiB once the V8 engine that renders its SVG charts has reserved its
pointer cage), so a bound tight enough to matter would stop normal kernels; a watchdog reading ``VmRSS`` would act only
after the memory is taken and would have to kill the kernel. With
``RLIMIT_DATA`` an allocation beyond the bound fails at once: Python raises
``MemoryError`` (DuckDB an out-of-memory error) in the cell that asked, the
viewer's page shows the cell error and the kernel lives on; code that cannot
handle a failed allocation ends its kernel, which Voila reports as a dead
kernel. Nothing else on the server is affected. The measurements behind the
default are in ``benchmarks/results/dashboard_kernel.md``.

This module imports only the standard library: it runs before every kernel.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

__all__ = [
    "DEFAULT_KERNEL_MEMORY",
    "KERNEL_NAME",
    "apply_memory_limit",
    "format_bytes",
    "kernel_argv",
    "main",
    "parse_memory",
    "write_kernelspec",
]

#: The bound on one dashboard kernel's private writable memory (``VmData``) unless ``--kernel-memory`` says otherwise.
#: Measured on the 2,000-customer demo, cold: 421–860 MiB of ``VmData`` after a dashboard's widget cell, 1,086–1,556 MiB
#: after its last cell (≈ 560 MiB of it reserved, not resident, by the V8 engine of the SVG charts).
#: 3 GiB leaves ≈ 1.5 GiB (about twice the resident size of the heaviest page) for stores larger than the demo.
DEFAULT_KERNEL_MEMORY = "3GiB"
#: The kernelspec name the dashboard notebooks ask for (their ``metadata.kernelspec.name``), bounded by the spec written here.
KERNEL_NAME = "python3"

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
#: Below this a Python kernel cannot even start (the interpreter and ipykernel take about 100 MiB of VmData).
_MIN_BYTES = 64 * 1024**2


def parse_memory(value: str | int | None, *, name: str = "kernel memory") -> int | None:
    """Turn a memory size such as ``"2GiB"``, ``"1.5 GB"`` or ``"800MiB"`` into bytes.

    Parameters
    ----------
    value : str, int or None
        A number of bytes, or a number with a unit: ``B``, ``KB``/``MB``/``GB``/``TB``
        (powers of 1000; ``K``/``M``/``G``/``T`` alike) or ``KiB``/``MiB``/``GiB``/``TiB``
        (powers of 1024), case-insensitive. ``0``, ``"0"``, ``"none"``, ``""``
        and None mean no bound.
    name : str, default "kernel memory"
        What the value is, for the error message.

    Returns
    -------
    int or None
        Bytes, or None for no bound.

    Raises
    ------
    ValueError
        If *value* is not a size, or is a bound under 64 MiB (no kernel could start).

    Examples
    --------
    >>> parse_memory("2GiB"), parse_memory("1.5GB"), parse_memory("none")
    (2147483648, 1500000000, None)
    """
    if value is None or isinstance(value, bool):
        if value is None:
            return None
        msg = f"{name} must be a size such as 2GiB or 'none', got {value!r}"
        raise ValueError(msg)
    if isinstance(value, int):
        number, unit = float(value), ""
    else:
        text = value.strip()
        if text.lower() in {"", "none", "0"}:
            return None
        match = _SIZE.match(text)
        if match is None or match.group(2).lower() not in _UNITS:
            msg = (
                f"{name} must be a size such as 2GiB, 1500MB or 'none' (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), "
                f"got {value!r}"
            )
            raise ValueError(msg)
        number, unit = float(match.group(1)), match.group(2).lower()
    size = int(number * _UNITS[unit])
    if size == 0:
        return None
    if size < _MIN_BYTES:
        msg = f"{name} {value!r} is {size} bytes; a Python kernel needs at least 64MiB (or 'none' for no bound)"
        raise ValueError(msg)
    return size


def format_bytes(size: int) -> str:
    """Return *size* bytes as a short binary size (``"2 GiB"``, ``"768 MiB"``).

    Parameters
    ----------
    size : int
        Bytes.

    Returns
    -------
    str
        The size in the largest binary unit that keeps it at least 1, up to two decimals.

    Examples
    --------
    >>> format_bytes(2 * 1024**3), format_bytes(805306368)
    ('2 GiB', '768 MiB')
    """
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            return f"{round(size / factor, 2):g} {unit}"
    return f"{size} B"


def apply_memory_limit(max_bytes: int) -> None:
    """Limit this process's private writable memory (``RLIMIT_DATA``) to *max_bytes*, soft and hard.

    The hard limit is lowered too, so code in the kernel cannot lift the
    bound; a lower hard limit already in place is kept.

    Parameters
    ----------
    max_bytes : int
        The bound, in bytes (positive).

    Raises
    ------
    ValueError
        If *max_bytes* is not positive.
    OSError
        If the platform has no ``RLIMIT_DATA`` (not Linux or another Unix) or refuses the limit.
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        msg = f"max_bytes must be a positive number of bytes, got {max_bytes!r}"
        raise ValueError(msg)
    try:
        import resource
    except ImportError as exc:  # Windows
        msg = "a kernel memory bound needs the 'resource' module (Linux or another Unix); use --kernel-memory none"
        raise OSError(msg) from exc
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    limit = max_bytes if hard == resource.RLIM_INFINITY else min(max_bytes, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def kernel_argv(max_bytes: int, *, python: str | None = None) -> list[str]:
    """Return the kernelspec ``argv`` that starts an IPython kernel under *max_bytes*.

    Parameters
    ----------
    max_bytes : int
        The bound passed to :func:`main` as ``--max-bytes``.
    python : str, optional
        The interpreter (default: this one, ``sys.executable``).

    Returns
    -------
    list of str
        ``[python, "-m", "journeylib.reports.kernel_launcher", "--max-bytes", N,
        "-m", "ipykernel_launcher", "-f", "{connection_file}"]``.
    """
    return [
        python or sys.executable,
        "-m",
        "journeylib.reports.kernel_launcher",
        "--max-bytes",
        str(int(max_bytes)),
        "-m",
        "ipykernel_launcher",
        "-f",
        "{connection_file}",
    ]


def write_kernelspec(folder: str | os.PathLike[str], max_bytes: int, *, python: str | None = None) -> Path:
    """Write the bounded kernelspec into *folder* (a ``JUPYTER_PATH`` entry) and return its directory.

    Parameters
    ----------
    folder : str or os.PathLike
        A folder that will be put first on ``JUPYTER_PATH``; the spec goes to
        ``<folder>/kernels/python3/kernel.json`` (created).
    max_bytes : int
        The bound on each kernel's private writable memory.
    python : str, optional
        The interpreter (default: this one).

    Returns
    -------
    pathlib.Path
        ``<folder>/kernels/python3``.
    """
    spec_dir = Path(folder) / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": kernel_argv(max_bytes, python=python),
        "display_name": f"Python 3 (journeylib dashboard, at most {format_bytes(max_bytes)})",
        "language": "python",
        "metadata": {"debugger": False, "journeylib_max_bytes": int(max_bytes)},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n")
    return spec_dir


def main(argv: list[str] | None = None) -> int:
    """Apply ``--max-bytes`` to this process, then run ``-m MODULE ARGS...`` in its place (``os.execv``).

    Parameters
    ----------
    argv : list of str, optional
        ``--max-bytes N -m MODULE [ARGS...]`` (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Never in practice: the process becomes *MODULE*. A usage error exits
        with status 2 (``SystemExit``) before any limit is set.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m journeylib.reports.kernel_launcher",
        usage="%(prog)s --max-bytes N -m MODULE [ARGS...]",
        description="Run a Python module (an IPython kernel) with RLIMIT_DATA set to --max-bytes.",
    )
    parser.add_argument("--max-bytes", type=int, required=True, help="bound on private writable memory, in bytes")
    # everything from "-m MODULE" on belongs to the module (its own options such as -f included)
    if "-m" not in args or args.index("-m") == len(args) - 1:
        parser.error("missing -m MODULE (the module to run, e.g. -m ipykernel_launcher -f {connection_file})")
    cut = args.index("-m")
    ns = parser.parse_args(args[:cut])
    module, rest = args[cut + 1], args[cut + 2 :]
    if ns.max_bytes <= 0:
        parser.error(f"--max-bytes must be a positive number of bytes, got {ns.max_bytes}")
    apply_memory_limit(ns.max_bytes)
    os.execv(sys.executable, [sys.executable, "-c", _bootstrap(module), *rest])
    return 0  # pragma: no cover -- execv does not return


#: Modules a dashboard kernel does without: jsonschema imports ``rfc3987_syntax`` when it is installed (it comes
#: with jupyter's ``jsonschema[format-nongpl]``) and builds its Lark grammar, 0.95 s of a kernel's ~3 s of imports,
#: only to check the ``iri`` and ``iri-reference`` formats, which the Vega-Lite schema Altair validates against does
#: not use (it has ``uri``, ``uri-reference`` and ``color-hex``). Marked absent, jsonschema skips those two checks.
SKIPPED_IMPORTS: tuple[str, ...] = ("rfc3987_syntax",)


def _bootstrap(module: str) -> str:
    """Return the ``python -c`` program that marks :data:`SKIPPED_IMPORTS` absent and runs *module* as ``-m`` would."""
    return (
        "import runpy, sys\n"
        f"for name in {SKIPPED_IMPORTS!r}:\n"
        "    sys.modules.setdefault(name, None)\n"
        f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)\n"
    )


if __name__ == "__main__":
    sys.exit(main())

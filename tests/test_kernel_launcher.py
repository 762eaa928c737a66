"""The dashboards' bounded kernel launcher (``journeylib.reports.kernel_launcher``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from journeylib.reports.kernel_launcher import (
    KERNEL_NAME,
    format_bytes,
    kernel_argv,
    main,
    parse_memory,
    write_kernelspec,
)

MiB = 1024**2
#: Enough for an IPython kernel (≈ 100–150 MiB of VmData at start), small enough to allocate beyond in a test.
BOUND = 384 * MiB


def test_sizes_are_read_with_decimal_and_binary_units() -> None:
    assert parse_memory("2GiB") == 2 * 1024**3
    assert parse_memory("1.5 GB") == 1_500_000_000
    assert parse_memory("768mib") == 768 * MiB
    assert parse_memory("100M") == 100_000_000
    assert parse_memory(3 * 1024**3) == 3 * 1024**3
    for none in ("none", "NONE", "0", "", 0, None):
        assert parse_memory(none) is None  # type: ignore[arg-type]
    assert format_bytes(2 * 1024**3) == "2 GiB"
    assert format_bytes(1536 * MiB) == "1.5 GiB"


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("2 gigs", r"kernel memory must be a size such as 2GiB.*got '2 gigs'"),
        ("-1GB", r"kernel memory must be a size"),
        ("10MiB", r"kernel memory '10MiB' is 10485760 bytes; a Python kernel needs at least 64MiB"),
        (True, r"kernel memory must be a size such as 2GiB or 'none', got True"),
    ],
)
def test_a_size_that_is_not_one_is_refused(value: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_memory(value)


def test_the_kernelspec_runs_ipykernel_through_the_launcher(tmp_path: Path) -> None:
    spec_dir = write_kernelspec(tmp_path, BOUND, python="/usr/bin/python3")
    assert spec_dir == tmp_path / "kernels" / KERNEL_NAME
    spec = json.loads((spec_dir / "kernel.json").read_text())
    assert spec["argv"] == kernel_argv(BOUND, python="/usr/bin/python3")
    assert spec["argv"][1:5] == ["-m", "journeylib.reports.kernel_launcher", "--max-bytes", str(BOUND)]
    assert spec["argv"][-4:] == ["-m", "ipykernel_launcher", "-f", "{connection_file}"]
    assert spec["language"] == "python"


def test_jupyter_finds_the_bounded_spec_before_every_other_python3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    write_kernelspec(tmp_path, BOUND)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)  # the class Voila uses by default
    assert spec.argv[:5] == [sys.executable, "-m", "journeylib.reports.kernel_launcher", "--max-bytes", str(BOUND)]


def test_the_launcher_refuses_a_command_line_without_module_or_bound() -> None:
    with pytest.raises(SystemExit) as missing_module:
        main(["--max-bytes", str(BOUND)])
    assert missing_module.value.code == 2
    with pytest.raises(SystemExit) as missing_bound:
        main(["-m", "ipykernel_launcher"])
    assert missing_bound.value.code == 2
    with pytest.raises(SystemExit):
        main(["--max-bytes", "0", "-m", "ipykernel_launcher"])


def test_the_launcher_sets_the_limit_and_becomes_the_module_in_the_same_process(tmp_path: Path) -> None:
    """The module runs in the launcher's process (same pid, which the kernel manager watches) under the limit."""
    (tmp_path / "probe_limit.py").write_text(
        "import os, resource, sys\nprint(os.getpid(), *resource.getrlimit(resource.RLIMIT_DATA), *sys.argv[1:])\n"
    )
    argv = [sys.executable, "-m", "journeylib.reports.kernel_launcher", "--max-bytes", str(BOUND), "-m", "probe_limit", "-f", "x"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    assert out.split() == [str(process.pid), str(BOUND), str(BOUND), "-f", "x"]


def test_the_launched_module_runs_without_the_skipped_imports_and_altair_still_validates(tmp_path: Path) -> None:
    (tmp_path / "probe_imports.py").write_text(
        "import sys\nimport altair as alt\nimport pandas as pd\n"
        "print(sys.modules.get('rfc3987_syntax', 'not marked'), __name__)\n"
        "alt.Chart(pd.DataFrame({'x': [1.0]})).mark_point().encode(x='x:Q').to_dict()\n"
        "try:\n    alt.Chart(pd.DataFrame({'x': [1.0]})).mark_point(size='big').to_dict()\n"
        "except Exception as exc:\n    print(type(exc).__name__)\n"
    )
    argv = [sys.executable, "-m", "journeylib.reports.kernel_launcher", "--max-bytes", str(8 * BOUND), "-m", "probe_imports"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split("\n")
    assert lines[0] == "None __main__"  # marked absent; run as "python -m" runs a module
    assert lines[1] == "SchemaValidationError"  # Altair's schema validation still refuses a bad spec


@pytest.fixture
def bounded_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    """An IPython kernel started from the bounded kernelspec, found on JUPYTER_PATH as Voila finds it."""
    from jupyter_client.manager import start_new_kernel

    write_kernelspec(tmp_path, BOUND)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    km, kc = start_new_kernel(kernel_name=KERNEL_NAME)
    try:
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def _run(kc: Any, code: str) -> tuple[str, str, list[str]]:
    """Execute *code*; return (status, stdout, error names)."""
    out: list[str] = []
    errors: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            errors.append(msg["content"]["ename"])

    reply = kc.execute_interactive(code, timeout=120, output_hook=hook)
    return reply["content"]["status"], "".join(out), errors


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_kernel_cannot_allocate_beyond_its_bound_and_lives_on(bounded_kernel: tuple[Any, Any]) -> None:
    km, kc = bounded_kernel
    pid = km.provisioner.pid
    limits = Path(f"/proc/{pid}/limits").read_text()
    assert f"Max data size             {BOUND}" in limits  # the kernel process itself carries the limit
    status, out, _ = _run(kc, "import resource\nprint(resource.getrlimit(resource.RLIMIT_DATA))")
    assert (status, out.strip()) == ("ok", f"({BOUND}, {BOUND})")
    # a normal allocation works: 50 MB
    status, out, _ = _run(kc, "small = bytearray(50_000_000)\nprint(len(small))")
    assert (status, out.strip()) == ("ok", "50000000")
    # beyond the bound: the allocation fails in the cell that asked for it
    status, _, errors = _run(kc, f"big = bytearray({2 * BOUND})")
    assert (status, errors) == ("error", ["MemoryError"])
    # the code cannot lift the bound (the hard limit is lowered too)
    status, _, errors = _run(kc, f"import resource\nresource.setrlimit(resource.RLIMIT_DATA, ({4 * BOUND}, {4 * BOUND}))")
    assert (status, errors) == ("error", ["ValueError"])
    # and the kernel lives on with what it had
    status, out, _ = _run(kc, "print(len(small))")
    assert (status, out.strip()) == ("ok", "50000000")
    assert km.is_alive()

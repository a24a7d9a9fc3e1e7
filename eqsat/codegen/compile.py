"""Turn C source into a loaded shared library, cached on disk under `config.compiledir`.

An entry is `<key>.so`, where the key hashes the source, the compiler's identity, the flags and the
machine. Each .so ends with a trailer holding the sha256 of the bytes before it, so a truncated or
overwritten entry is detected and rebuilt. Entries and probe results are written to a temporary
file in the same directory and renamed into place, so concurrent processes never see half a file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import cffi

from eqsat.config import config

FLAGS: tuple[str, ...] = (
    "-O3",
    "-march=native",
    "-fPIC",
    "-shared",
    "-fopenmp",
    "-fno-math-errno",  # math functions are pure (hoistable, vectorizable); IEEE results kept
    "-fwrapv",  # signed integer overflow wraps around, as in NumPy
    "-ffp-contract=off",  # no fused multiply-adds: each operation rounds, as in NumPy
    "-std=gnu11",
)
if platform.machine().lower() in ("x86_64", "amd64"):
    # Where -march=native has AVX-512, use its full width: the vector math of an elementwise
    # chain runs 1.46x faster than at GCC's default preference of 256 bits.
    FLAGS += ("-mprefer-vector-width=512",)
LIBS: tuple[str, ...] = ("-lm",)
_MVEC = "-lmvec"
_OPENMP = "-fopenmp"

_MAGIC = b"EQSATSO1"
_TRAILER_SIZE = len(_MAGIC) + 32
_STDERR_LIMIT = 4000
_COMPILE_TIMEOUT_S = 600
# Bump when the entry format or the key's recipe changes, so old entries are never reused.
_FORMAT = "eqsat-compile-1"


@dataclass
class Library:
    """A loaded shared library and how it was obtained."""

    ffi: cffi.FFI
    lib: Any
    path: str
    cache_hit: bool
    seconds: float


class CompileError(RuntimeError):
    """The C compiler is missing, failed, or produced a library that does not load."""


@dataclass(frozen=True)
class _Toolchain:
    command: tuple[str, ...]
    flags: tuple[str, ...]
    libs: tuple[str, ...]
    identity: str
    probe_name: str  # where the probe results are kept in a cache directory
    probe_json: str


# (source, cdef, compiledir, $CC) -> Library; a second load in one process is a dict lookup.
_MEMO: dict[tuple[str, str, str, str | None], Library] = {}
_FFIS: dict[str, cffi.FFI] = {}
# Probe results keyed by the compiler binary's stat, so an upgraded compiler is probed again.
_TOOLCHAINS: dict[str, _Toolchain] = {}


def compiler() -> str | None:
    """The C compiler command load() uses: $CC, else the first of cc, gcc, clang on PATH."""
    cc = os.environ.get("CC", "").strip()
    if cc:
        words = shlex.split(cc)
        return cc if words and shutil.which(words[0]) else None
    for name in ("cc", "gcc", "clang"):
        if shutil.which(name):
            return name
    return None


def load(source: str, cdef: str) -> Library:
    """Compile `source` (or reuse the cached build) and dlopen it with the declarations `cdef`."""
    start = time.perf_counter()
    directory = os.path.abspath(config.compiledir)
    memo_key = (source, cdef, directory, os.environ.get("CC"))
    known = _MEMO.get(memo_key)
    if known is not None:
        return dataclasses.replace(known, cache_hit=True, seconds=time.perf_counter() - start)
    toolchain = _toolchain(directory)
    path = os.path.join(directory, _key(source, toolchain) + ".so")
    ffi = _ffi(cdef)
    lib = _open_cached(ffi, path)
    cache_hit = lib is not None
    if lib is None:
        _build(source, path, toolchain)
        try:
            lib = ffi.dlopen(path)
        except OSError as e:
            raise CompileError(f"the freshly built {path} does not load: {e}") from e
    library = Library(ffi, lib, path, cache_hit, time.perf_counter() - start)
    _MEMO[memo_key] = library
    return library


def _ffi(cdef: str) -> cffi.FFI:
    # Parsing a cdef costs milliseconds, and many libraries share one signature.
    ffi = _FFIS.get(cdef)
    if ffi is None:
        ffi = cffi.FFI()
        ffi.cdef(cdef)
        _FFIS[cdef] = ffi
    return ffi


def _key(source: str, toolchain: _Toolchain) -> str:
    parts = [_FORMAT, source, toolchain.identity, shlex.join(toolchain.flags + toolchain.libs)]
    parts.append(_machine())
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


@functools.cache
def _machine() -> str:
    # -march=native makes the binary depend on the CPU, not just the architecture.
    lines = [platform.machine()]
    wanted = ("model name", "flags", "Features", "CPU implementer", "CPU part")
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                break  # the first processor describes them all
            if line.split(":")[0].strip() in wanted:
                lines.append(line.strip())
    return "\n".join(lines)


def _trailer(data: bytes) -> bytes:
    """What follows `data` in a complete cache entry."""
    return _MAGIC + hashlib.sha256(data).digest()


def _intact(data: bytes) -> bool:
    if len(data) <= _TRAILER_SIZE:
        return False
    body, magic, digest = data[:-_TRAILER_SIZE], data[-_TRAILER_SIZE:-32], data[-32:]
    return magic == _MAGIC and hashlib.sha256(body).digest() == digest


def _open_cached(ffi: cffi.FFI, path: str) -> Any | None:
    # Any failure here means "not cached": the caller rebuilds and replaces the entry.
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if not _intact(data):
        return None
    try:
        return ffi.dlopen(path)
    except OSError:
        return None


def _write_atomic(path: str, data: bytes) -> None:
    directory, name = os.path.split(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _build(source: str, path: str, toolchain: _Toolchain) -> None:
    directory, name = os.path.split(path)
    os.makedirs(directory, exist_ok=True)
    probe_path = os.path.join(directory, toolchain.probe_name)
    if not os.path.exists(probe_path):
        _write_atomic(probe_path, toolchain.probe_json.encode())
    # Compile from a stable file name so diagnostics point at a file the user can open.
    c_path = path[: -len(".so")] + ".c"
    _write_atomic(c_path, source.encode())
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=name + ".", suffix=".tmp")
    os.close(fd)
    command = [*toolchain.command, *toolchain.flags, c_path, "-o", tmp, *toolchain.libs]
    try:
        _run(command)
        with open(tmp, "rb") as f:
            data = f.read()
        with open(tmp, "ab") as f:
            f.write(_trailer(data))
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _run(command: list[str]) -> None:
    try:
        proc = subprocess.run(
            command,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            timeout=_COMPILE_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CompileError(f"could not run the C compiler: {shlex.join(command)}\n{e}") from e
    if proc.returncode != 0:
        stderr = proc.stderr.strip()
        if len(stderr) > _STDERR_LIMIT:
            more = len(stderr) - _STDERR_LIMIT
            stderr = stderr[:_STDERR_LIMIT] + f"\n... ({more} more characters)"
        raise CompileError(
            f"C compilation failed (exit {proc.returncode}): {shlex.join(command)}\n{stderr}"
        )


def _toolchain(directory: str) -> _Toolchain:
    cc = compiler()
    if cc is None:
        raise CompileError(
            "no C compiler found: set the CC environment variable or put cc, gcc or clang on PATH"
            f" (CC={os.environ.get('CC')!r})"
        )
    words = tuple(shlex.split(cc))
    executable = os.path.realpath(shutil.which(words[0]) or words[0])
    stat = os.stat(executable)
    stamp = json.dumps([words, executable, stat.st_mtime_ns, stat.st_size, FLAGS, LIBS])
    toolchain = _TOOLCHAINS.get(stamp)
    if toolchain is None:
        # Probes run the compiler, so their results are kept on disk too: a warm load in a
        # fresh process must not start any subprocess.
        probe_name = "toolchain-" + hashlib.sha256(stamp.encode()).hexdigest()[:24] + ".json"
        probe = _read_probe(os.path.join(directory, probe_name)) or _probe(words)
        flags = FLAGS if probe["openmp"] else tuple(f for f in FLAGS if f != _OPENMP)
        libs = LIBS + ((_MVEC,) if probe["mvec"] else ())
        if probe["mvec"]:  # the source may then declare glibc's vector math (c_ops.PRELUDE)
            flags += ("-DEQSAT_MVEC",)
        identity = f"{shlex.join(words)}\n{executable}\n{probe['version']}"
        toolchain = _Toolchain(words, flags, libs, identity, probe_name, json.dumps(probe))
        _TOOLCHAINS[stamp] = toolchain
    return toolchain


def _read_probe(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as f:
            probe = json.load(f)
    except (OSError, ValueError):
        return None
    ok = isinstance(probe, dict) and isinstance(probe.get("version"), str)
    return probe if ok and {"openmp", "mvec"} <= probe.keys() else None


_PROBE_SOURCE = """
double probe_sum(const double *x, int n) {
    double s = 0.0;
    #pragma omp parallel for reduction(+:s)
    for (int i = 0; i < n; i++) s += x[i];
    return s;
}
"""


def _probe(words: tuple[str, ...]) -> dict[str, Any]:
    """The compiler's version text, and whether it can build with OpenMP and link libmvec."""
    try:
        proc = subprocess.run(
            [*words, "--version"],
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            timeout=60,
            check=False,
        )
        version = (proc.stdout + proc.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CompileError(f"could not run the C compiler {shlex.join(words)}: {e}") from e
    with tempfile.TemporaryDirectory(prefix="eqsat-probe-") as tmp:
        c_path = os.path.join(tmp, "probe.c")
        with open(c_path, "w", encoding="utf-8") as f:
            f.write(_PROBE_SOURCE)

        def works(flags: tuple[str, ...], libs: tuple[str, ...]) -> bool:
            command = [*words, *flags, c_path, "-o", os.path.join(tmp, "probe.so"), *libs]
            try:
                _run(command)
            except CompileError:
                return False
            return True

        # One compile in the common case where everything is available.
        if works(FLAGS, LIBS + (_MVEC,)):
            return {"version": version, "openmp": True, "mvec": True}
        openmp = works(FLAGS, LIBS)
        flags = FLAGS if openmp else tuple(f for f in FLAGS if f != _OPENMP)
        return {"version": version, "openmp": openmp, "mvec": works(flags, LIBS + (_MVEC,))}

"""One hardware truth: the catalogue's verdicts and the engine's plan read the same device list.

On this machine the real llama.cpp build (CPU + RPC, no local GPU backend) is asked; a GPU machine is
stood in for at the edge only: a fake ggml device list (``devices.ggml_view``) or a fake ``pynvml``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from app.catalog import devices, hardware, load_catalog
from app.catalog.devices import (
    DEVICE_ACCEL,
    DEVICE_CPU,
    DEVICE_GPU,
    DEVICE_IGPU,
    NO_BUILD_SUPPORT,
    NO_GPU_FOUND,
    NO_LLAMA,
    GgmlView,
    RawDevice,
)
from app.catalog.fit import Fit, assess
from app.catalog.hardware import detect_hardware
from app.engine.chat_session import plan_load
from app.engine.gguf_meta import read_gguf_metadata
from app.engine.offload import build_offloads, detect_gpu

GB = 10**9
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def fresh_detection() -> Iterator[None]:
    detect_hardware.cache_clear()
    yield
    detect_hardware.cache_clear()


def _fake_pynvml(monkeypatch: pytest.MonkeyPatch, cards: list[tuple[str, int, int]]) -> None:
    """A pynvml module that reports ``cards`` (name, total, free), as nvidia-ml-py does."""
    def handle(index: int) -> int:
        return index

    fake = SimpleNamespace(
        nvmlInit=lambda: None, nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: len(cards),
        nvmlDeviceGetHandleByIndex=handle,
        nvmlDeviceGetName=lambda i: cards[i][0],
        nvmlDeviceGetMemoryInfo=lambda i: SimpleNamespace(total=cards[i][1], free=cards[i][2], used=0),
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)


def _cpu(free: int = 32 * GB) -> RawDevice:
    return RawDevice("CPU", "Some CPU", DEVICE_CPU, "CPU", free, free)


def test_this_machine_catalogue_and_engine_agree(smollm2: Path) -> None:
    """The CPU + RPC build here: VRAM 0 with the same reason in the summary, a verdict and the plan."""
    hw = detect_hardware()
    support = detect_gpu()
    assert hw.vram_total == 0 and not hw.gpus
    assert support.free_vram == 0 and not support.devices
    assert support.offload == build_offloads() is False  # RPC makes llama_supports_gpu_offload() true
    assert hw.gpu_note == support.reason == NO_BUILD_SUPPORT
    assert NO_BUILD_SUPPORT in hw.summary() and NO_BUILD_SUPPORT in str(support)
    _, small = load_catalog().variant("mistral-7b-openorca:gguf:Q4_K_M")
    report = assess(small, hw)
    if report.fit is not Fit.NO:
        assert NO_BUILD_SUPPORT in report.reason
    _, plan = plan_load(smollm2, read_gguf_metadata(smollm2))
    assert plan.n_gpu_layers == 0
    assert str(plan).startswith(f"CPU only ({NO_BUILD_SUPPORT})")


def test_this_build_lists_no_local_gpu_device() -> None:
    view = devices.ggml_view()
    assert view is not None and view.devices is not None
    assert "RPC" in (view.backends or ())  # the shared build is compiled with -DGGML_RPC=on
    assert devices.local_backends(view) == ()
    assert any(d.kind == DEVICE_CPU for d in view.devices)


def test_nvidia_card_with_a_cpu_only_build_counts_no_vram(monkeypatch: pytest.MonkeyPatch, smollm2: Path) -> None:
    """The issue's case: an NVIDIA card (NVML sees it) and a build that cannot use it."""
    _fake_pynvml(monkeypatch, [("NVIDIA GeForce RTX 4090", 24 * GB, 23 * GB)])
    hw = detect_hardware()
    assert hw.vram_total == 0 and hw.gpu_note == NO_BUILD_SUPPORT
    assert "found NVIDIA GeForce RTX 4090" in hw.summary()
    support = detect_gpu()
    assert support.free_vram == 0 and "found NVIDIA GeForce RTX 4090" in str(support)
    _, plan = plan_load(smollm2, read_gguf_metadata(smollm2))
    assert plan.n_gpu_layers == 0 and NO_BUILD_SUPPORT in str(plan)
    # A 13B Q8 needs ~15 GB: it would fit the card, but this machine's verdict ignores the card.
    catalog = load_catalog()
    for model in catalog.models:
        for variant in model.variants:
            assert "on the GPU" not in assess(variant, hw).reason


def _gpu_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CUDA build on a 24 GB card, with an RPC server's device in the list (remote, not local VRAM)."""
    view = GgmlView(True, ("CUDA", "RPC", "CPU"), (
        RawDevice("CUDA0", "NVIDIA GeForce RTX 4090", DEVICE_GPU, "CUDA", 22 * GB, 24 * GB),
        RawDevice("RPC[studio:50052]", "remote", DEVICE_GPU, "RPC", 40 * GB, 48 * GB),
        RawDevice("BLAS", "OpenBLAS", DEVICE_ACCEL, "BLAS", 0, 0),
        _cpu(),
    ))
    monkeypatch.setattr(devices, "ggml_view", lambda: view)
    monkeypatch.setattr(devices, "nvml_gpus", lambda: pytest.fail("NVML asked although ggml answered"))


def test_gpu_machine_numbers_flow_to_catalogue_and_engine(monkeypatch: pytest.MonkeyPatch,
                                                          smollm2: Path) -> None:
    _gpu_machine(monkeypatch)
    hw = detect_hardware()
    support = detect_gpu()
    assert [g.name for g in hw.gpus] == ["NVIDIA GeForce RTX 4090"]
    assert hw.vram_total == 24 * GB and hw.vram_free == 22 * GB and not hw.unified_memory
    assert support.offload and support.free_vram == 22 * GB and build_offloads()
    assert [d.backend for d in support.devices] == ["CUDA"]
    assert "24.0 GB VRAM (NVIDIA GeForce RTX 4090)" in hw.summary()
    _, q4 = load_catalog().variant("mistral-7b-openorca:gguf:Q4_K_M")
    assert assess(q4, hw).fit is Fit.GOOD and "runs entirely on the GPU" in assess(q4, hw).reason
    _, plan = plan_load(smollm2, read_gguf_metadata(smollm2))
    assert plan.all_on_gpu and not plan.cpu_only and "layers on GPU" in str(plan)


def test_rpc_only_build_offloads_nothing_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    view = GgmlView(True, ("RPC", "CPU"), (RawDevice("RPC[a:1]", "remote", DEVICE_GPU, "RPC", GB, GB), _cpu()))
    report = devices.report_from(view, None)
    assert not report.offload and report.reason == NO_BUILD_SUPPORT and report.vram_total == 0


def test_integrated_gpus_count_and_share_memory() -> None:
    """Vulkan on an Intel/AMD iGPU: an IGPU device counts, its memory is the system's."""
    view = GgmlView(True, ("Vulkan", "CPU"), (
        RawDevice("Vulkan0", "Intel(R) Iris(R) Xe Graphics", DEVICE_IGPU, "Vulkan", 8 * GB, 8 * GB), _cpu()))
    report = devices.report_from(view, None)
    assert report.offload and report.source == "ggml" and report.devices[0].integrated
    hw = hardware.hardware_from(report, 16 * GB, 12 * GB)
    assert hw.unified_memory and hw.vram_total == 8 * GB
    assert "shared with the GPU: Intel(R) Iris(R) Xe Graphics" in hw.summary()


def test_amd_and_metal_devices_count() -> None:
    for backend, name in (("ROCm", "AMD Radeon RX 7900 XTX"), ("Metal", "Apple M3 Max"), ("Vulkan", "AMD")):
        view = GgmlView(True, (backend, "CPU"), (RawDevice(f"{backend}0", name, DEVICE_GPU, backend, GB, 2 * GB),))
        report = devices.report_from(view, None)
        assert report.offload and report.vram_total == 2 * GB and report.devices[0].backend == backend


def test_gpu_build_without_a_gpu_says_no_gpu_found() -> None:
    view = GgmlView(True, ("CUDA", "CPU"), (_cpu(),))
    report = devices.report_from(view, ())
    assert report.offload and not report.devices and report.reason == NO_GPU_FOUND
    hw = hardware.hardware_from(report, 16 * GB, 12 * GB)
    assert hw.summary().endswith("no VRAM counted: no GPU found")


def test_nvml_answers_only_where_ggml_cannot(monkeypatch: pytest.MonkeyPatch) -> None:
    """An older library without the device API: NVML's numbers stand in."""
    _fake_pynvml(monkeypatch, [("NVIDIA A100", 80 * GB, 70 * GB), ("NVIDIA A100", 80 * GB, 75 * GB)])
    nvml = devices.nvml_gpus()
    assert nvml is not None and [g.free_bytes for g in nvml] == [70 * GB, 75 * GB]
    report = devices.report_from(GgmlView(True, ("CUDA", "CPU"), None), nvml)
    assert report.source == "nvml" and report.vram_total == 160 * GB


def test_no_nvidia_driver_means_no_nvml_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_driver() -> None:
        raise OSError("libnvidia-ml.so.1: cannot open shared object file")

    monkeypatch.setitem(sys.modules, "pynvml", SimpleNamespace(nvmlInit=no_driver))
    assert devices.nvml_gpus() is None


def test_llama_cpp_missing_counts_no_vram() -> None:
    report = devices.report_from(None, ())
    assert not report.offload and report.reason == NO_LLAMA


def test_described_machines_still_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "ggml_view", lambda: pytest.fail("a described machine needs no detection"))
    monkeypatch.setenv("HEARTH_HARDWARE", "ram=8GB,vram=12GB")
    hw = detect_hardware()
    assert hw.vram_total == 12 * GB and hw.ram_total == 8 * GB


def test_cli_fits_ignores_a_card_the_build_cannot_use(tmp_path: Path) -> None:
    """`hearth catalog --fits` in a real process, with a fake pynvml on its path reporting a 24 GB card."""
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "pynvml.py").write_text(textwrap.dedent("""
        from types import SimpleNamespace
        def nvmlInit(): pass
        def nvmlShutdown(): pass
        def nvmlDeviceGetCount(): return 1
        def nvmlDeviceGetHandleByIndex(i): return i
        def nvmlDeviceGetName(h): return "NVIDIA GeForce RTX 4090"
        def nvmlDeviceGetMemoryInfo(h): return SimpleNamespace(total=24 * 10**9, free=23 * 10**9, used=0)
    """), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake), str(ROOT)])}

    def fits(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "app", "catalog", "--fits", *extra],
                              capture_output=True, text=True, timeout=60, env=env)

    detected = fits()
    assert detected.returncode == 0, detected.stderr
    summary = detected.stdout.strip().splitlines()
    line = next(s for s in summary if "this machine:" in s)
    assert f"{NO_BUILD_SUPPORT}; found NVIDIA GeForce RTX 4090" in line
    # The card adds nothing: the same variants fit as on a described machine with this RAM and no GPU.
    ram = psutil.virtual_memory().total
    described = fits("--hardware", f"ram={ram}")
    assert described.returncode == 0, described.stderr
    counts = next(s for s in described.stdout.splitlines() if "this machine:" in s).split(" · ")[0]
    assert line.split(" · ")[0] == counts  # "N variants of M models"


def test_the_gui_asks_in_a_child_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Isolated, the answer comes from a child (which sees the fake NVML on its path), and llama.cpp stays out."""
    here = devices.detect_devices()
    monkeypatch.setattr(devices, "_isolated", True)
    assert devices.detect_devices() == here  # the same answer, asked in a child
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "pynvml.py").write_text(textwrap.dedent("""
        from types import SimpleNamespace
        def nvmlInit(): pass
        def nvmlShutdown(): pass
        def nvmlDeviceGetCount(): return 1
        def nvmlDeviceGetHandleByIndex(i): return i
        def nvmlDeviceGetName(h): return b"NVIDIA H200"
        def nvmlDeviceGetMemoryInfo(h): return SimpleNamespace(total=141 * 10**9, free=140 * 10**9, used=0)
    """), encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", str(fake))
    child = devices.detect_devices()
    assert child.reason == NO_BUILD_SUPPORT and child.unusable == ("NVIDIA H200",)
    monkeypatch.setattr(devices, "probe_command", lambda: [sys.executable, "-c", "raise SystemExit(3)"])
    assert devices.detect_devices() == here  # a failed child: asked here instead
    script = ("import sys; from app.catalog import devices; devices.isolate_queries()\n"
              "from app.catalog.hardware import detect_hardware; print(detect_hardware().summary())\n"
              "print('llama_cpp' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    summary, llama_loaded = result.stdout.splitlines()
    assert NO_BUILD_SUPPORT in summary and llama_loaded == "False"

"""``import hatast.models`` fills BasicSR's registries without clashing with BasicSR or Real-ESRGAN; ``import hatast``
alone is cheap and only makes ``import basicsr`` work."""

import importlib.util
import subprocess
import sys

import pytest

import hatast.models  # noqa: F401  (before basicsr: the torchvision shim, then the registries)


def test_registries_hold_hatast_names():
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, MODEL_REGISTRY

    assert ARCH_REGISTRY.get("HAT").__module__ == "hatast.archs.hat_arch"
    assert MODEL_REGISTRY.get("HATModel").__module__ == "hatast.models.hat_model"
    assert DATASET_REGISTRY.get("BicubicDownsampleDataset").__module__ == "hatast.data.bicubic_dataset"
    # BasicSR's own registrations are still there
    assert MODEL_REGISTRY.get("SRModel").__module__ == "basicsr.models.sr_model"


def test_shim_is_noop_when_module_exists(monkeypatch):
    import types

    from hatast.compat import install_torchvision_shim

    fake = types.ModuleType("torchvision.transforms.functional_tensor")
    monkeypatch.setitem(sys.modules, "torchvision.transforms.functional_tensor", fake)
    assert install_torchvision_shim() is False
    assert sys.modules["torchvision.transforms.functional_tensor"] is fake


def run_python(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_fresh_import_in_clean_process():
    code = ("import hatast.models, basicsr; from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY\n"
            "print(ARCH_REGISTRY.get('HAT').__module__, DATASET_REGISTRY.get('BicubicDownsampleDataset').__module__)")
    assert run_python(code) == ["hatast.archs.hat_arch", "hatast.data.bicubic_dataset"]


def test_import_hatast_then_basicsr_works_and_registers_nothing():
    """``import hatast`` installs only the import hook: BasicSR then imports with current torchvision."""
    code = ("import sys, hatast; print('torch' in sys.modules)\n"
            "import basicsr; from basicsr.utils.registry import ARCH_REGISTRY; print('HAT' in ARCH_REGISTRY)")
    assert run_python(code) == ["False", "False"]


def test_table_upscale_path_imports_neither_torch_nor_basicsr():
    """The command module and the table API load without PyTorch (about 0.5 GiB resident) or BasicSR."""
    code = ("import sys, hatast.cli.upscale, hatast.lut\n"
            "print(*(name in sys.modules for name in ('torch', 'torchvision', 'basicsr')))")
    assert run_python(code) == ["False", "False", "False"]


@pytest.mark.skipif(importlib.util.find_spec("realesrgan") is None, reason="realesrgan is not installed")
def test_import_alongside_realesrgan():
    code = ("import hatast, realesrgan\n"
            "from basicsr.utils.registry import MODEL_REGISTRY\n"
            "print(MODEL_REGISTRY.get('RealESRGANModel').__module__, MODEL_REGISTRY.get('HATModel').__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["realesrgan.models.realesrgan_model", "hatast.models.hat_model"]

"""Importing hatast fills BasicSR's registries without clashing with BasicSR or Real-ESRGAN."""

import importlib.util
import subprocess
import sys

import pytest

import hatast  # noqa: F401  (before basicsr: installs the torchvision shim)


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


def test_fresh_import_in_clean_process():
    code = "import hatast, basicsr; from basicsr.utils.registry import ARCH_REGISTRY; print(ARCH_REGISTRY.get('HAT'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "hatast.archs.hat_arch.HAT" in out.stdout


@pytest.mark.skipif(importlib.util.find_spec("realesrgan") is None, reason="realesrgan is not installed")
def test_import_alongside_realesrgan():
    code = ("import hatast, realesrgan\n"
            "from basicsr.utils.registry import MODEL_REGISTRY\n"
            "print(MODEL_REGISTRY.get('RealESRGANModel').__module__, MODEL_REGISTRY.get('HATModel').__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["realesrgan.models.realesrgan_model", "hatast.models.hat_model"]

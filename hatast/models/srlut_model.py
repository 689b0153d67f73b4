"""SRLUTModel: trains SR-LUT nets and fine-tunes their tables, and writes the table with every checkpoint.

* ``network_g: {type: SRLUTNet, ...}``: the net with the rotation ensemble (inside ``SRLUTNet.forward``, so training
  and validation use the same ensemble). Each checkpoint save also transfers the net to a table
  (``lut: {interval: 4}``, default 4) and writes it next to the checkpoint as ``net_g_<iter>.npz``.
* ``network_g: {type: LUTNet, lut_path: ...}``: LUT-aware fine-tuning of the table entries themselves; saves write the
  int8 table the same way.
* ``val: {on_table: true}`` validates the transferred int8 table (what ships) instead of the float net.
"""

from __future__ import annotations

from basicsr.utils.registry import MODEL_REGISTRY

from ..archs.lut_arch import LUTNet
from ..archs.srlut_arch import SRLUTNet
from ..lut.inference import upscale_batch
from ..lut.table import LUTTable
from .base import HatastSRModel, TableCheckpoints


@MODEL_REGISTRY.register()
class SRLUTModel(TableCheckpoints, HatastSRModel):
    """BasicSR model for look-up-table SR (SR-LUT V/F/S)."""

    _val_table: LUTTable | None = None

    def optimize_parameters(self, current_iter: int) -> None:
        super().optimize_parameters(current_iter)
        self._trained_iter = current_iter

    def _bare_net(self):
        net = self.get_bare_model(self.net_g_ema if hasattr(self, "net_g_ema") else self.net_g)
        if not isinstance(net, (SRLUTNet, LUTNet)):
            raise ValueError(f"SRLUTModel trains SRLUTNet or LUTNet, not {type(net).__name__} (network_g: type)")
        return net

    def tables(self) -> LUTTable:
        """The int8 table of the current weights (transferred from the net, or the fine-tuned entries)."""
        net = self._bare_net()
        table = net.to_table(int(self.opt.get("lut", {}).get("interval", 4))) if isinstance(net, SRLUTNet) else (
            net.table())
        table.info = {"experiment": self.opt["name"], "network_g": dict(self.opt["network_g"])}
        return table

    def validation(self, dataloader, current_iter, tb_logger, save_img):
        self._val_table = self.tables() if self.opt.get("val", {}).get("on_table") else None
        try:
            super().validation(dataloader, current_iter, tb_logger, save_img)
        finally:
            self._val_table = None

    def test(self) -> None:
        if self._val_table is None:
            return super().test()
        self.output = upscale_batch(self._val_table, self.lq)

"""Look-up-table SR: the table file, simplex interpolation and the rotation ensemble (torch and a fused CPU kernel).

Nothing here imports the networks or BasicSR, so SR-LUT and IM-LUT models build on it without cycles.
"""

from .fields import RECEPTIVE_FIELDS, ReceptiveField, receptive_field
from .inference import upscale
from .table import LUTError, LUTTable, load_table

__all__ = ["RECEPTIVE_FIELDS", "LUTError", "LUTTable", "ReceptiveField", "load_table", "receptive_field", "upscale"]

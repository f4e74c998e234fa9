"""What a process imports: CompressAI without torch_geometric and torchvision (asymllic.compressai_import), and
both real packages still importable afterwards in the same process."""
import json
import os
import subprocess
import sys

from conftest import ROOT

SCRIPT = r"""
import json, sys, torch
import asymllic.codec.coding  # imports CompressAI
from compressai.entropy_models import EntropyBottleneck
before = sorted(m for m in ("torch_geometric", "torchvision", "torch._dynamo") if m in sys.modules)
eb = EntropyBottleneck(4).eval()
eb.update(force=True)
x = torch.randn(1, 4, 8, 8) * 3
strings = eb.compress(x)
same = bool(torch.equal(eb.decompress(strings, x.shape[-2:]), torch.round(x - eb._get_medians()) + eb._get_medians()))
import torch_geometric.transforms, torchvision.transforms
real = [getattr(m, "__file__", None) for m in (torch_geometric.transforms, torchvision.transforms)]
print(json.dumps({"before": before, "same": same, "real": real, "resize": hasattr(torchvision.transforms, "Resize")}))
"""


def test_compressai_is_imported_without_torch_geometric_and_torchvision():
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["before"] == []  # none of the three (torch._dynamo came with torchvision's ops)
    assert result["same"]  # CompressAI's entropy coder works
    assert all(f and "site-packages" in f for f in result["real"]) and result["resize"]  # imported later: the real ones

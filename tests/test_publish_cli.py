"""``asymllic confirm`` and ``asymllic rd``: the command line over search.confirm and search.rd (their work is
tested in test_confirm.py and test_rd.py); bad input is one line, and an export's card carries a verdict."""
import pytest

from conftest import run_cli


@pytest.mark.parametrize("args, says", [
    (("confirm", "no-such-study"), "no study 'no-such-study'"),
    (("rd", "paper", "--teachers", "missing.pt"), "missing.pt"),
    (("rd", "not-a-model", "--teachers", "missing.pt"), "not-a-model"),
])
def test_bad_input_is_one_line(tmp_path, args, says):
    proc = run_cli(*args, "--root", str(tmp_path), check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("asymllic: error:") and says in lines[0], proc.stderr


def test_an_exported_card_says_what_confirmation_found(tmp_path):
    import pandas as pd

    import space
    from search.export import Pick, card
    from search.spec import SearchSpec

    spec = SearchSpec(study="s", root=str(tmp_path))
    cfg = space.get_preset("paper")
    (tmp_path / "s" / "confirm").mkdir(parents=True)
    pd.DataFrame([{"decoder": "trial 3", "config_id": space.config_id(cfg),
                   "seeds": 3, "steps": 600, "verdict": "beats the teacher's decoder by 0.40 dB PSNR, outside seed noise"}]).to_csv(
        tmp_path / "s" / "confirm" / "confirm.csv", index=False)
    pick = Pick(row=pd.Series({"number": 3, "psnr": 20.0, "decoder_gmacs": 50.0}), part="synthesis", rank=1,
                front_size=1, cheaper_on_front=0, best=True, references_left_out=False)
    assert "confirmed over seeds: beats the teacher's decoder by 0.40 dB" in card(pick, spec, cfg)

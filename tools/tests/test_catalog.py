"""models/catalog.json: every released AV-MAE checkpoint (shared model-zoo.md), consistent with itself.

The numbers a bundle needs (clip, video sampling, classes) must agree with what the converter writes by default,
because `avmae-serve models fetch` converts with those defaults.
"""
import json

import pytest

from checkpoints import REPO

CATALOG = json.loads((REPO / "models" / "catalog.json").read_text())
MODELS = CATALOG["models"]
# (dir under the base URL, metric) from the model zoo, in its order.
ZOO = [
    ("audioset/as2m_selfsup_audiovisual", None),
    ("audioset/as2m_selfsup_audiovisual_finetuned_audiovisual", 51.8),
    ("audioset/as2m_selfsup_audiovisual_finetuned_audio", 46.6),
    ("audioset/as2m_selfsup_audiovisual_finetuned_video", 31.1),
    ("audioset/as2m_selfsup_audio", None),
    ("audioset/as2m_selfsup_audio_finetuned_audio", 46.4),
    ("vggsound/vggsound_selfsup_audiovisual", None),
    ("vggsound/vggsound_selfsup_audiovisual_finetuned_audiovisual", 65.0),
    ("vggsound/vggsound_selfsup_audiovisual_finetuned_audio", 57.2),
    ("vggsound/vggsound_selfsup_audiovisual_finetuned_video", 50.3),
]


def test_every_zoo_checkpoint_is_listed_once():
    assert [(m["dir"], m["metric"]["value"] if m["metric"] else None) for m in MODELS] == ZOO
    assert len({m["name"] for m in MODELS}) == len(MODELS)


@pytest.mark.parametrize("model", MODELS, ids=[m["name"] for m in MODELS])
def test_entry_is_consistent(model):
    base = CATALOG["base_url"]
    assert model["checkpoint_url"] == f"{base}{model['dir']}/checkpoint"
    assert model["savedmodel_url"] == f"{base}{model['dir']}/tf_saved_model.zip"
    assert model["dir"].startswith(model["dataset"] + "/")
    finetuned = model["kind"] == "finetuned"
    assert model["modalities"] == (model["finetuned_on"] if finetuned else model["pretrained_on"])
    assert model["clip_seconds"] == {"audioset": 10.0, "vggsound": 8.0}[model["dataset"]]
    assert (model["frames"], model["stride"], model["resize_short"]) == ((32, 2, 256) if finetuned else (16, 4, 224))
    if finetuned:
        assert model["num_classes"] == {"audioset": 527, "vggsound": 309}[model["dataset"]]
        assert model["label_set"] == model["dataset"]
        assert model["metric"]["name"] == {"audioset": "mAP", "vggsound": "top-1 accuracy"}[model["dataset"]]
        assert (model["labels_url"] is None) == (model["dataset"] == "vggsound")
    else:
        assert (model["num_classes"], model["label_set"], model["metric"], model["labels_url"]) == (0, "none", None, None)

"""The paper preset (Solanki & Roussos 2022, §3.3): exact architecture and optimiser, without 1000 epochs."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dfm.decoder import PaperDecoder, PersonDecoder, make_decoder
from dfm.decoder.mlp import RMSELoss


def test_paper_preset_layers_and_training_setting():
    dec = make_decoder("paper")
    assert isinstance(dec, PaperDecoder)
    net = dec.build_network()
    linears = [m for m in net if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (2, 4096), (4096, 2048), (2048, 1024), (1024, 512), (512, 128), (128, 64), (64, 53)
    ]
    # ReLU (+ dropout) after every hidden layer, none after the output layer
    kinds = [type(m) for m in net]
    assert kinds.count(nn.ReLU) == 6 and kinds.count(nn.Dropout) == 6 and kinds[-1] is nn.Linear
    assert all(m.p == dec.dropout > 0 for m in net if isinstance(m, nn.Dropout))
    opt = dec.build_optimizer(net)
    assert type(opt) is torch.optim.Adam
    assert opt.param_groups[0]["lr"] == 1e-3 and opt.param_groups[0]["weight_decay"] == 0.0
    assert isinstance(dec.build_loss(), RMSELoss)
    assert dec.batch_size == 32 and dec.epochs == 1000
    assert dec.patience is None and dec.restore_best is False  # the paper trains all epochs
    # RMSE loss is the square root of the MSE
    a, b = torch.zeros(4, 53), torch.full((4, 53), 0.5)
    assert float(dec.build_loss()(a, b)) == np.float32(0.5)


def test_paper_preset_trains_one_epoch_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    n = 320
    va = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    expr = np.clip(0.5 + 0.3 * va[:, :1] + 0.05 * rng.normal(size=(n, 53)), 0, 1).astype(np.float32)
    dec = PaperDecoder(epochs=1, num_threads=1).fit(va, expr, frame_index=np.arange(n))  # exact architecture
    assert dec.report_.epochs == 1 and dec.report_.decoder == "paper"
    # the person decoder with a paper data decoder (small width to keep the file small) saves as safetensors
    small = PaperDecoder(hidden_sizes=(16, 8), epochs=2, num_threads=1)
    # select=False keeps the network itself (model selection would rightly prefer the mean over a 2-epoch net)
    person = PersonDecoder(decoder=small, select=False).fit(va, expr, frame_index=np.arange(n))
    assert person.choice_ is None
    person.save(tmp_path / "m")
    assert (tmp_path / "m" / "weights.safetensors").exists()
    again = PersonDecoder.load(tmp_path / "m")
    q = rng.uniform(-1, 1, (500, 2))
    assert np.array_equal(again.predict(q), person.predict(q))
    assert again.decoder_.get_params() == small.get_params()

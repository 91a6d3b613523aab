"""MLP decoders: the paper's expression decoder network (Solanki & Roussos 2022, §3.3) and smaller variants.

PaperDecoder's defaults are the paper's setting: 2 -> 4096 -> 2048 -> 1024 -> 512 -> 128 -> 64 -> 53
fully connected, ReLU, dropout, RMSE loss, Adam with learning rate 1e-3, batch size 32, 1000 epochs.
The paper states that dropout is used but we could not find the rate in what we could read; 0.2
(after every hidden ReLU) is our assumption and a parameter. The paper's output was its 30-D 3DMM
expression space; ours is the 53 ICT blendshapes (a linear output layer; `predict` clips to [0, 1]).

Training is plain mini-batch Adam on shuffled training pairs. After every epoch the validation RMSE
(time blocks, dfm.decoder.split) is recorded; with `patience` set, training stops when it has not improved
for `patience` epochs, and with `restore_best` the weights of the best epoch are kept. `max_seconds` caps
the wall-clock time (checked every batch; the last epoch's `fraction` in the history says how much of it
ran). The paper preset
trains all epochs (patience=None) and keeps the last weights, as the paper does.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from torch import nn

from dfm.decoder.base import DataDecoder
from dfm.errors import DfmError
from dfm.face.expressions import N_EXPRESSIONS

PAPER_HIDDEN = (4096, 2048, 1024, 512, 128, 64)


class RMSELoss(nn.Module):
    """sqrt(mean squared error) over the batch and all coefficients (the paper's loss)."""

    def __init__(self, eps: float = 1e-12):
        super().__init__()
        self.eps = eps

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(torch.mean((pred - target) ** 2) + self.eps)


_ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}
_LOSSES = {"rmse": RMSELoss, "mse": nn.MSELoss}


def build_mlp(hidden_sizes: Sequence[int], activation: str = "relu", dropout: float = 0.0) -> nn.Sequential:
    """2 -> hidden... -> 53: Linear, activation, Dropout (if > 0) per hidden layer, linear output."""
    if activation not in _ACTIVATIONS:
        raise DfmError(f"unknown activation {activation!r}; choose one of {', '.join(_ACTIVATIONS)}")
    layers: list[nn.Module] = []
    width = 2
    for h in hidden_sizes:
        layers += [nn.Linear(width, int(h)), _ACTIVATIONS[activation]()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = int(h)
    layers.append(nn.Linear(width, N_EXPRESSIONS))
    return nn.Sequential(*layers)


class MLPDecoder(DataDecoder):
    """A fully connected VA -> expression network trained with Adam and validation early stopping.

    The defaults are the small, large-batch variant measured as a `fast` candidate; see PaperDecoder for
    the paper's setting.
    """

    kind: ClassVar[str] = "mlp"

    def __init__(
        self,
        hidden_sizes: Sequence[int] = (256, 256, 128),
        activation: str = "relu",
        dropout: float = 0.0,
        loss: str = "rmse",
        optimizer: str = "adam",
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        batch_size: int = 512,
        epochs: int = 200,
        patience: int | None = 15,
        restore_best: bool = True,
        max_seconds: float | None = None,
        val_fraction: float = 0.2,
        block_frames: int = 48,
        gap_frames: int | None = None,
        seed: int = 0,
        num_threads: int | None = None,
        device: str = "cpu",
        verbose: bool = False,
    ):
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.activation = activation
        self.dropout = dropout
        self.loss = loss
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.epochs = epochs
        self.patience = patience
        self.restore_best = restore_best
        self.max_seconds = max_seconds
        self.val_fraction = val_fraction
        self.block_frames = block_frames
        self.gap_frames = gap_frames
        self.seed = seed
        self.num_threads = num_threads
        self.device = device
        self.verbose = verbose

    # -- construction (exposed so the paper setting can be checked without training) ---------------
    def build_network(self) -> nn.Sequential:
        return build_mlp(self.hidden_sizes, self.activation, self.dropout)

    def build_optimizer(self, net: nn.Module) -> torch.optim.Optimizer:
        if self.optimizer == "adam":
            return torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        if self.optimizer == "adamw":
            return torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        if self.optimizer == "sgd":
            return torch.optim.SGD(net.parameters(), lr=self.lr, momentum=0.9, weight_decay=self.weight_decay)
        raise DfmError(f"unknown optimizer {self.optimizer!r}; choose adam, adamw or sgd")

    def build_loss(self) -> nn.Module:
        if self.loss not in _LOSSES:
            raise DfmError(f"unknown loss {self.loss!r}; choose one of {', '.join(_LOSSES)}")
        return _LOSSES[self.loss]()

    # -- training -----------------------------------------------------------------------------------
    def _fit_split(self, va_tr, expr_tr, va_val, expr_val) -> dict[str, Any]:
        if self.num_threads:
            torch.set_num_threads(int(self.num_threads))
        torch.manual_seed(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        dev = torch.device(self.device)
        net = self.build_network().to(dev)
        opt = self.build_optimizer(net)
        loss_fn = self.build_loss()
        x = torch.from_numpy(np.ascontiguousarray(va_tr)).to(dev)
        y = torch.from_numpy(np.ascontiguousarray(expr_tr)).to(dev)
        xv = torch.from_numpy(np.ascontiguousarray(va_val)).to(dev)
        yv = torch.from_numpy(np.ascontiguousarray(expr_val)).to(dev)
        n = x.shape[0]
        bs = int(self.batch_size)
        best, best_epoch, best_state, since = np.inf, 0, None, 0
        history: list[dict[str, float]] = []
        t0 = time.perf_counter()
        epoch = 0
        for epoch in range(1, int(self.epochs) + 1):
            net.train()
            perm = torch.randperm(n, generator=gen).to(dev)
            total, count = 0.0, 0
            out_of_time = False
            for i in range(0, n, bs):
                if self.max_seconds is not None and time.perf_counter() - t0 > self.max_seconds:
                    out_of_time = True  # wall-clock cap: stop mid-epoch, still validate below
                    break
                idx = perm[i : i + bs]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(net(x[idx]), y[idx])
                loss.backward()
                opt.step()
                total += float(loss.detach()) * idx.shape[0]
                count += idx.shape[0]
            net.eval()
            with torch.no_grad():
                pv = torch.cat([net(xv[i : i + 8192]) for i in range(0, xv.shape[0], 8192)])
                val = float(torch.sqrt(torch.mean((pv.clamp(0, 1) - yv) ** 2)))
            history.append({"epoch": epoch, "loss_train": total / max(count, 1), "rmse_val": val,
                            "fraction": count / n})
            if self.verbose:
                print(f"epoch {epoch}: train loss {total / max(count, 1):.5f}, val RMSE {val:.5f}", flush=True)
            if val < best - 1e-6:
                best, best_epoch, since = val, epoch, 0
                if self.restore_best:
                    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                since += 1
            if self.patience is not None and since >= self.patience:
                break
            if out_of_time or (self.max_seconds is not None and time.perf_counter() - t0 > self.max_seconds):
                break
        if self.restore_best and best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        self.net_ = net.cpu()
        return {
            "epochs": epoch,
            "best_epoch": best_epoch,
            "selected": {"epoch": best_epoch if self.restore_best else epoch},
            "history": history,
        }

    def _predict_raw(self, va: np.ndarray, chunk: int = 8192) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(va, dtype=np.float32))
        with torch.no_grad():  # in chunks: the paper net's 4096-wide activations are large
            return torch.cat([self.net_(x[i : i + chunk]) for i in range(0, x.shape[0], chunk)]).numpy()

    def _state(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        net = self.build_network()
        net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()})
        net.eval()
        self.net_ = net


class PaperDecoder(MLPDecoder):
    """The paper's expression decoder network with the paper's training setting as defaults."""

    kind: ClassVar[str] = "paper"

    def __init__(
        self,
        hidden_sizes: Sequence[int] = PAPER_HIDDEN,
        activation: str = "relu",
        dropout: float = 0.2,
        loss: str = "rmse",
        optimizer: str = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        batch_size: int = 32,
        epochs: int = 1000,
        patience: int | None = None,
        restore_best: bool = False,
        max_seconds: float | None = None,
        val_fraction: float = 0.2,
        block_frames: int = 48,
        gap_frames: int | None = None,
        seed: int = 0,
        num_threads: int | None = None,
        device: str = "cpu",
        verbose: bool = False,
    ):
        super().__init__(
            hidden_sizes=hidden_sizes, activation=activation, dropout=dropout, loss=loss, optimizer=optimizer,
            lr=lr, weight_decay=weight_decay, batch_size=batch_size, epochs=epochs, patience=patience,
            restore_best=restore_best, max_seconds=max_seconds, val_fraction=val_fraction,
            block_frames=block_frames, gap_frames=gap_frames, seed=seed, num_threads=num_threads,
            device=device, verbose=verbose,
        )

"""A function ``torch.fx.wrap`` makes a leaf of traced code, and a model calling it (round-11 fx tests): fx writes
``from _fx_wrapped import scaled_sum`` into the GraphModule's code, which torch.load imports."""

from __future__ import annotations

import torch


def scaled_sum(x: torch.Tensor, scale: float) -> torch.Tensor:
    return x.sum(-1, keepdim=True) * scale


torch.fx.wrap("scaled_sum")


class Wrapped(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)

    def forward(self, x, y=None, *, k=2):  # fx writes the getattr below into its code
        h = self.lin(x)
        return scaled_sum(h, 2.0), getattr(h, "shape"), torch.where(h > 0, h, -h), h.view(-1)[0]  # noqa: B009

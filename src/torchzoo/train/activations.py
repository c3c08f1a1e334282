"""Custom activations of the activation-function tutorials, written to export.

Every branch is computed for every element and one is picked with :func:`torch.where`: no Python
``if`` on tensor values, so ``torch.jit.script`` and the ONNX exporter keep the same math as eager.
Each branch that is *not* picked is fed a safe argument (a non-zero divisor, a positive logarithm
argument, an exponent of 0), so a NaN or inf computed there can neither appear in the output nor leak
into gradients (``torch.where`` passes ``0 * inf = NaN`` back through the unpicked branch otherwise).

* :class:`BentIdentity`: ``(sqrt(x^2 + 1) - 1) / 2 + x``.
* :class:`SoftExponential`: Godfrey & Gashler's soft exponential (arXiv:1602.01321) with a learnable
  ``alpha``; its logarithmic side is undefined where ``1 - alpha * (x + alpha) <= 0``, where this module
  clamps the logarithm's argument to :data:`LOG_FLOOR` (see the class).
* :class:`SoftExponential2`: the "inverted" soft exponential with fixed ``alpha`` and ``beta``: the input
  (not the sign of ``alpha``) picks the exponential or logarithmic side, around the pivot ``beta``.
"""

from __future__ import annotations

import torch
from torch import nn

#: smallest argument the soft exponential's logarithm sees (its domain ends at 0; see SoftExponential)
LOG_FLOOR = 1e-6


class BentIdentity(nn.Module):
    """Bent identity: ``(sqrt(x^2 + 1) - 1) / 2 + x`` (slope 1/2 far left, 3/2 far right, 1 at 0)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (torch.sqrt(x * x + 1.0) - 1.0) / 2.0 + x


class SoftExponential(nn.Module):
    """Soft exponential with a learnable scalar ``alpha`` (arXiv:1602.01321)::

        alpha < 0:  -log(1 - alpha * (x + alpha)) / alpha
        alpha = 0:  x
        alpha > 0:  (exp(alpha * x) - 1) / alpha + alpha

    The ``alpha < 0`` side is a logarithm whose argument ``1 - alpha * (x + alpha)`` reaches 0 at
    ``x = -alpha - 1/|alpha|`` (for the house models' start, alpha = -0.9: x = -0.211) and is undefined
    below; there the curve falls to -inf. This module clamps the argument to ``LOG_FLOOR``, so inputs
    past the end of the domain give the curve's floor ``log(LOG_FLOOR) / |alpha|`` (about -15.4 at
    alpha = -0.9) instead of NaN, and every format computes the same number.
    """

    def __init__(self, alpha: float = 0.0) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor(float(alpha)))
        self.log_floor = LOG_FLOOR

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha
        positive = alpha > 0
        negative = alpha < 0
        one = torch.ones_like(alpha)
        divisor = torch.where(negative | positive, alpha, one)
        exponent = torch.where(positive, alpha * x, torch.zeros_like(x))
        exp_side = (torch.exp(exponent) - 1.0) / divisor + alpha
        argument = torch.clamp(1.0 - alpha * (x + alpha), min=self.log_floor)
        log_side = -torch.log(torch.where(negative, argument, torch.ones_like(x))) / divisor
        return torch.where(positive, exp_side, torch.where(negative, log_side, x))

    def extra_repr(self) -> str:
        return f"alpha={self.alpha.item():.4g} (learnable)"


class SoftExponential2(nn.Module):
    """The "inverted" soft exponential: fixed ``alpha > 0`` and pivot ``beta``; the input picks the side::

        u = x - beta
        u >= 0:  beta + (exp(alpha * u) - 1) / alpha       (exponential above the pivot)
        u <  0:  beta - log(1 - alpha * u) / alpha          (logarithmic below it)

    Where the classic soft exponential chooses logarithm, identity or exponential by the sign of
    ``alpha``, this form keeps ``alpha`` positive and chooses by the sign of ``x - beta``: both sides
    pass through ``(beta, beta)`` with slope 1 (the curve is C1), it grows exponentially above the
    pivot and logarithmically below it, and it is defined for every input (``1 - alpha * u > 1`` on the
    logarithmic side). The two sides are the soft exponential's exp and log branches at ``+alpha``
    and ``-alpha``, which are each other's inverse: hence "inverted". Defaults: alpha 0.1, beta 7.0.
    """

    def __init__(self, alpha: float = 0.1, beta: float = 7.0) -> None:
        super().__init__()
        if alpha <= 0:
            raise ValueError(f"SoftExponential2 needs alpha > 0, got {alpha}")
        self.alpha = float(alpha)
        self.beta = float(beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = x - self.beta
        above = u >= 0
        exp_side = (torch.exp(torch.where(above, self.alpha * u, torch.zeros_like(u))) - 1.0) / self.alpha
        log_side = -torch.log(torch.where(above, torch.ones_like(u), 1.0 - self.alpha * u)) / self.alpha
        return self.beta + torch.where(above, exp_side, log_side)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha:g}, beta={self.beta:g} (fixed)"

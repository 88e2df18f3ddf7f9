"""Freezing and unfreezing the encoder by ``requires_grad`` alone.

The original study built its optimizer from the trainable parameters only, so when the
encoder was "unfrozen" later it was in no optimizer and never changed. Here every
parameter is in the optimizer from step 0 (see ``optim``) and freezing only toggles
``requires_grad``: a frozen parameter gets no gradient, so AdamW skips it (its weight
stays bit-identical, weight decay included), and autograd computes no weight gradient
for it, which is what makes a frozen step cheaper. Unfreezing flips the flag back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from workflow_scripts.training.model import PatchEncoderModel, input_embedding_weight

TRAINABLE_WHILE_FROZEN = ("none", "layernorm")


def encoder_frozen_at(epoch: int, freeze_epochs: int) -> bool:
    """Whether the encoder is frozen in 1-based ``epoch``: the first ``freeze_epochs`` are."""
    return epoch <= freeze_epochs


def is_norm_module(module: nn.Module) -> bool:
    """LayerNorm-like modules: torch's LayerNorm/RMSNorm and HF classes such as T5LayerNorm."""
    if isinstance(module, nn.LayerNorm | nn.RMSNorm | nn.GroupNorm):
        return True
    name = type(module).__name__.lower()
    return name.endswith(("layernorm", "rmsnorm"))


def norm_parameters(module: nn.Module) -> list[nn.Parameter]:
    """Parameters that belong directly to a norm module inside ``module``."""
    found: dict[int, nn.Parameter] = {}
    for sub in module.modules():
        if is_norm_module(sub):
            for parameter in sub.parameters(recurse=False):
                found[id(parameter)] = parameter
    return list(found.values())


def set_encoder_frozen(model: PatchEncoderModel, frozen: bool, trainable_while_frozen: str = "none") -> None:
    """Toggle ``requires_grad`` on the encoder; the new layers always train.

    The encoder's vocabulary table never trains: ``inputs_embeds`` bypasses it.
    """
    if trainable_while_frozen not in TRAINABLE_WHILE_FROZEN:
        raise ValueError(
            f"trainable_while_frozen {trainable_while_frozen!r} is not allowed "
            f"(allowed: {', '.join(TRAINABLE_WHILE_FROZEN)})"
        )
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    if model.encoder is None:
        return
    keep = {id(p) for p in norm_parameters(model.encoder)} if trainable_while_frozen == "layernorm" else set()
    for parameter in model.encoder.parameters():
        parameter.requires_grad_(not frozen or id(parameter) in keep)
    unused = input_embedding_weight(model.encoder)
    if unused is not None:
        unused.requires_grad_(False)


def trainable_while_frozen_parameters(
    model: PatchEncoderModel, trainable_while_frozen: str
) -> list[nn.Parameter]:
    """Encoder parameters that train even while the encoder is frozen."""
    if model.encoder is None or trainable_while_frozen == "none":
        return []
    return norm_parameters(model.encoder)


@dataclass
class FreezeState:
    """A run's freezing: the encoder is frozen for its first ``epochs`` epochs.

    ``apply(epoch)`` toggles ``requires_grad`` only when the wanted state changes and keeps
    ``trainable`` (the parameters gradient clipping sees) in step with it.
    """

    model: PatchEncoderModel
    epochs: int
    trainable_while_frozen: str = "none"
    frozen: bool | None = None
    trainable: list[nn.Parameter] = field(default_factory=list)

    def apply(self, epoch: int) -> bool:
        """Freeze or unfreeze the encoder as ``epoch`` wants; whether it is frozen."""
        frozen = encoder_frozen_at(epoch, self.epochs) and self.model.encoder is not None
        if frozen != self.frozen:
            set_encoder_frozen(self.model, frozen, self.trainable_while_frozen)
            self.frozen = frozen
            self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        return frozen

"""The HPSv3 network on transformers' own Qwen2-VL classes, with the checkpoint's parameter names.

``HPSv3.safetensors`` (MizzenAI/HPSv3) was saved from the authors' ``Qwen2VLRewardModelBT`` under
transformers 4.45, whose ``Qwen2VLForConditionalGeneration`` held ``visual`` (vision tower + merger), ``model``
(the text decoder), ``lm_head`` and their added ``rm_head``. ``HPSv3Model`` has exactly those children --
transformers 5's ``Qwen2VisionTransformerPretrainedModel`` and ``Qwen2VLTextModel`` keep the 4.45 parameter
names below them -- so the checkpoint loads with ``load_state_dict(strict=True)`` and no key rewriting.
``lm_head`` is not needed for a score; its one tensor is checked for shape and dropped (0.54 B parameters).

Forward (the authors' ``forward`` at inference):

    e      = embed_tokens(input_ids)                       [B, L, D]
    e[input_ids == <|image_pad|>] = visual(pixels, grid)  image tokens replaced by merged vision features
    h      = decoder(e, attention_mask, positions 0..L-1)  [B, L, D]   (1-D positions on all three M-RoPE axes:
                                                                        the authors pass position_ids=None)
    out    = rm_head(h[input_ids == <|Reward|>].float())   [B, 2] = (mu, sigma); the score is mu
    rm_head = Linear(D,1024) ReLU Dropout(.05) Linear(1024,16) ReLU Linear(16,2)   ("ranknet", kept in fp32)
"""

from __future__ import annotations

import torch
from torch import nn

UNUSED_CHECKPOINT_KEYS = ("lm_head.weight",)


def ranknet_head(hidden: int, out: int = 2) -> nn.Sequential:
    """The authors' default ``ranknet`` head (``rm_head_kwargs`` unset in HPSv3_7B.yaml)."""
    return nn.Sequential(nn.Linear(hidden, 1024), nn.ReLU(), nn.Dropout(0.05), nn.Linear(1024, 16), nn.ReLU(),
                         nn.Linear(16, out))


class HPSv3Model(nn.Module):
    """``visual`` + ``model`` (Qwen2-VL decoder) + ``rm_head``; see the module docstring for the forward.

    Built in ``dtype`` (default float32; ``config.json``'s ``torch_dtype`` is ignored, the caller decides).
    """

    def __init__(self, config, dtype: torch.dtype = torch.float32):
        super().__init__()
        from transformers.models.qwen2_vl.modeling_qwen2_vl import (
            Qwen2VisionTransformerPretrainedModel,
            Qwen2VLTextModel,
        )

        self.config = config
        self.visual = Qwen2VisionTransformerPretrainedModel._from_config(config.vision_config, dtype=dtype)
        self.model = Qwen2VLTextModel._from_config(config.text_config, dtype=dtype)
        self.rm_head = ranknet_head(config.text_config.hidden_size)

    @classmethod
    def empty(cls, config, dtype: torch.dtype = torch.float32) -> HPSv3Model:
        """Uninitialised parameters (no random init of 8 B weights: a checkpoint overwrites every one); the
        non-persistent buffers (rotary inverse frequencies) are rebuilt from the config."""
        with torch.device("meta"):
            model = cls(config, dtype)
        model.to_empty(device="cpu")
        for name, module in list(model.named_modules()):
            if getattr(module, "_non_persistent_buffers_set", None):
                if not hasattr(module, "config"):
                    raise TypeError(f"{name} ({type(module).__name__}) has buffers outside the checkpoint that "
                                    "cannot be rebuilt from a config")
                parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
                setattr(parent, name.rpartition(".")[2], type(module)(module.config))
        return model

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        self.rm_head.float()  # the authors keep the head in fp32 whatever the backbone's dtype
        return self

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pixel_values: torch.Tensor,
                grid_thw: torch.Tensor, reward_token_id: int) -> torch.Tensor:
        """``input_ids``/``attention_mask`` ``[B, L]`` (right-padded), ``pixel_values`` ``[N, C·T·p·p]``,
        ``grid_thw`` ``[B, 3]`` -> ``[B, 2]`` float32 (mu, sigma)."""
        embeds = self.model.embed_tokens(input_ids)
        vis = self.visual(pixel_values.to(embeds.dtype), grid_thw=grid_thw).pooler_output
        image_mask = (input_ids == self.config.image_token_id).unsqueeze(-1).expand_as(embeds)
        if int(image_mask[..., 0].sum()) != vis.shape[0]:
            raise ValueError(f"{int(image_mask[..., 0].sum())} image tokens but {vis.shape[0]} vision features")
        embeds = embeds.masked_scatter(image_mask, vis.to(embeds.dtype))
        hidden = self.model(inputs_embeds=embeds, attention_mask=attention_mask).last_hidden_state
        at_reward = input_ids == reward_token_id
        if not bool((at_reward.sum(1) == 1).all()):
            raise ValueError("every sequence must hold exactly one <|Reward|> token")
        return self.rm_head(hidden[at_reward].float())

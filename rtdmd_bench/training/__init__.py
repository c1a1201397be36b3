"""Training infrastructure shared by the recipes in ``trainers/``.

Modules: backbone (the protocol recipes are written against), samplers, parallel (the ONLY torch.distributed
user), loop, checkpoint, ema, lora, metrics, image_backbone (the diffusers adapters as a Backbone).
"""

"""rtdmd-bench: evaluation-first benchmark harness for few-step text-to-image generators.

Public API (importing this package stays light: no torch, diffusers or transformers):
    rtdmd_bench.registry      Registry[Spec]: lazy "module:Attr" targets, did-you-mean errors
    rtdmd_bench.config        strict YAML -> frozen dataclasses with typed --set overrides
    rtdmd_bench.eval          evaluate(): THE generation + scoring path (CLI and training both call it)
    rtdmd_bench.rewards       reward registry and build(name, weights, device, dtype)
    rtdmd_bench.models        generator registry and build(name, weights, device, dtype, lora)
    rtdmd_bench.suites        prompt-suite manifests and loaders
    rtdmd_bench.flow          sigma/velocity conversions and shift schedules (one place)
    rtdmd_bench.sampling      the CPS step and its log-probability (one place)
    rtdmd_bench.losses        pure loss functions of the trainers
    rtdmd_bench.testing       write_tiny_weights(root): tiny random weights in the production layout
Internal: cli, training, toy, report, tv_shim.
"""

from rtdmd_bench import tv_shim as _tv_shim

__version__ = "0.1.0"

_tv_shim.install_lazy()

"""What hyperdas_tl needs of the frozen target model, as a structural type.

:class:`TargetModel` lists the part of TransformerLens's model API the library calls:
``cfg`` (sizes), ``tokenizer`` / ``to_tokens``, a forward (``__call__``), scoped hooks
(``hooks(fwd_hooks=...)``, ``run_with_hooks``) and ``parameters()`` (device and dtype come from
the model). ``transformer_lens.model_bridge.TransformerBridge`` (what
:func:`hyperdas_tl.models.load_model` returns) satisfies it, and so did TransformerLens 3's
``HookedTransformer`` (removed in 4.0, with the same calls), so code typed with it says what it
uses without tying callers to one class. The partial forward
(:mod:`hyperdas_tl.partial_forward`) drives the bridge's own modules and is typed with
``TransformerBridge`` itself.

The protocols are ``runtime_checkable`` so the test suite's runtime type checks (jaxtyping +
beartype) can check them: an ``isinstance`` test of member *names*, not of signatures. This module
imports nothing heavy (the CLI's ``--help`` must not import torch).

:data:`HookPoint` is TransformerLens's ``HookPoint`` for type checkers; at run time it is
``object``, because importing ``transformer_lens`` costs seconds and the hook helpers of
:mod:`hyperdas_tl.hooks` are meant to be light (a hook also runs with ``hook=None`` outside
TransformerLens, e.g. in :mod:`hyperdas_tl.generation`).
"""

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from torch import Tensor
    from torch.nn import Parameter
    from transformer_lens.hook_points import HookPoint
else:
    HookPoint = object


@runtime_checkable
class TargetConfig(Protocol):
    """The sizes read off ``model.cfg`` (TransformerLens's ``TransformerBridgeConfig`` /
    ``HookedTransformerConfig``)."""

    n_layers: int
    d_model: int
    d_vocab: int
    n_ctx: int


@runtime_checkable
class TargetModel(Protocol):
    """A frozen TransformerLens model, as far as hyperdas_tl uses it (see the module
    docstring)."""

    cfg: Any
    """A :class:`TargetConfig` (``n_layers``, ``d_model``, ``d_vocab``, ``n_ctx``, ...)."""
    tokenizer: Any
    """The HF tokenizer (``pad_token_id``, ``decode``, offsets for entity positions)."""

    def __call__(self, input: Any, *args: Any, **kwargs: Any) -> Any:
        """The forward: token ids (and ``attention_mask=``) to logits."""
        ...

    def to_tokens(self, input: Any, *args: Any, **kwargs: Any) -> "Tensor":
        """Text to token ids ``[batch, pos]``."""
        ...

    def hooks(
        self,
        fwd_hooks: Any = ...,
        bwd_hooks: Any = ...,
        reset_hooks_end: bool = True,
        clear_contexts: bool = False,
    ) -> AbstractContextManager[Any]:
        """Hooks attached for the ``with`` block only (removed even when it raises)."""
        ...

    def run_with_hooks(self, input: Any, *args: Any, **kwargs: Any) -> Any:
        """One forward with ``fwd_hooks=[(name, fn), ...]`` attached (``stop_at_layer=``,
        ``attention_mask=`` as the forward takes them)."""
        ...

    def parameters(self, recurse: bool = True) -> Iterator["Parameter"]:
        """The model's parameters (its device and dtype are read from them)."""
        ...


__all__ = ["HookPoint", "TargetConfig", "TargetModel"]

"""The methods a comparison knows, which of them are seeded, and the names they are scored under."""

from hyperdas_tl.hyperdas.config import SELECTION_MODES

NO_INTERVENTION = "no intervention"
"""The no-op control: the bar every trained method's Disentangle is compared with."""
METHODS: tuple[str, ...] = (
    NO_INTERVENTION,
    "random subspace",
    "full residual swap",
    "probe",
    "DAS",
    "MDAS",
    "DAS (pooled)",
    "MDAS (pooled)",
    "HyperDAS",
    "HyperDAS (entity position)",
)
"""Every method :func:`compare_methods` knows (``"HyperDAS"`` is scored as its read-outs)."""
HYPERDAS_ENTITY_POSITION = "HyperDAS (entity position)"
"""The ablation of HyperDAS's position selection: the hypernetwork builds the subspace, the
interchange is at DAS's fixed positions (source entity token -> base entity token; see
``HyperDASArchitecture.positions``). Scored under its own name: its three read-outs are one."""
ABLATIONS = frozenset({"DAS (pooled)", "MDAS (pooled)", HYPERDAS_ENTITY_POSITION})
"""Methods run only when asked for by name."""
DEFAULT_METHODS: tuple[str, ...] = tuple(m for m in METHODS if m not in ABLATIONS)
SEEDED_METHODS = frozenset(
    {
        "random subspace",
        "DAS",
        "MDAS",
        "DAS (pooled)",
        "MDAS (pooled)",
        "HyperDAS",
        HYPERDAS_ENTITY_POSITION,
    }
)
"""Methods run once per seed; the others are deterministic and run once (seed None)."""
LONGEST_FIRST: tuple[str, ...] = (
    "HyperDAS",
    HYPERDAS_ENTITY_POSITION,
    "MDAS",
    "MDAS (pooled)",
    "DAS",
    "DAS (pooled)",
    "probe",
    "full residual swap",
    "random subspace",
    NO_INTERVENTION,
)
"""The methods by the time a unit of each took on the real benchmark (HyperDAS ~1,900 s, MDAS
~1,500 s, DAS ~1,000 s, the controls 120-350 s): the order in which processes sharing a folder
claim units, so that no process is left running a long unit alone at the end."""
HYPERDAS_METHODS: tuple[str, ...] = tuple(f"HyperDAS ({mode})" for mode in SELECTION_MODES)
PER_ATTRIBUTE_METHODS = frozenset({"DAS", "MDAS", "probe"})
"""Methods that learn one subspace per target attribute from its own cause rows."""


def scored_names(method: str) -> tuple[str, ...]:
    """The method names a requested method is scored under (HyperDAS: its three read-outs)."""
    return HYPERDAS_METHODS if method == "HyperDAS" else (method,)

"""The project's conventions, decided once and written down in one place.

Every other module (the reference, the adapters, the conformance suite)
follows these choices; where a framework differs, ``adapters.divergences``
says how and a test demonstrates it.

Layout
    A network of ``L`` layers has sizes ``(n_0, n_1, ..., n_L)``. Layer ``l``
    (1-based, as the documents count) owns ``W_l`` of shape ``(n_l, n_{l-1})``
    (document 001's ``(n_out, n_in)``, like ``torch.nn.Linear.weight``) and
    ``b_l`` of shape ``(n_l,)``, or ``None`` when the network has no biases
    (document 000's network). Parameters are a list of ``(W, b)`` pairs,
    ``params[l - 1] == (W_l, b_l)``. JAX/Flax kernels are ``(n_in, n_out)``;
    adapters transpose at their boundary.

Data
    Batch-first: ``x`` has shape ``(m, n_0)``. The documents write one sample
    as a column, ``z = W a + b``; for a batch of rows this is
    ``Z = A @ W.T + b``, which is what the code does.
    Targets: ``(m, n_L)`` floats for ``mse`` and ``bce`` (in [0, 1] for
    ``bce``); integer class indices ``(m,)`` for ``cross_entropy``.

Losses (``N`` is the reduction's normaliser, 1 under ``reduction="sum"``)
    mse            J = (1/N) sum (a - y)^2,          N = m * n_L
                   counterpart: torch.nn.MSELoss, optax.squared_error
    bce            J = -(1/N) sum y log a + (1 - y) log(1 - a),  a = sigmoid(z),
                   N = m * n_L; counterpart torch.nn.BCELoss,
                   optax.sigmoid_binary_cross_entropy (on logits)
    cross_entropy  J = -(1/N) sum_s log softmax(z_s)[c_s],       N = m
                   counterpart torch.nn.CrossEntropyLoss,
                   optax.softmax_cross_entropy_with_integer_labels

log(0) in bce
    The reference evaluates bce from the output layer's pre-activation ``z``
    as ``softplus(z) - y z``, which equals the formula above exactly and is
    finite for every finite ``z``: it never takes log(0). ``torch.nn.BCELoss``
    works on probabilities and clamps each log at -100; once ``sigmoid(z)``
    rounds to 0 or 1 its loss and gradient leave exact math (see
    ``adapters.divergences``).

Losses added to the documents' three
    huber(delta)   J = (1/N) sum h(a - y), h(d) = d^2 / 2 for |d| <= delta, else
                   delta (|d| - delta / 2), N = m * n_L;
                   counterpart torch.nn.HuberLoss, optax.huber_loss
    bce_with_logits  bce on the logits of an identity output layer, N = m * n_L;
                   counterpart torch.nn.BCEWithLogitsLoss, optax.sigmoid_binary_cross_entropy
    cross_entropy(label_smoothing=e)  against q = (1 - e) one_hot + e / K;
                   counterpart torch.nn.CrossEntropyLoss(label_smoothing=e), optax.smooth_labels

Activations added to the documents' four (torch's defaults)
    gelu       z Phi(z), Phi(z) = (1 + erf(z / sqrt 2)) / 2 (exact; nn.GELU(), jax.nn.gelu(approximate=False))
    gelu_tanh  z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))) / 2 (nn.GELU("tanh"), jax.nn.gelu's default)
    silu       z sigmoid(z) (nn.SiLU, jax.nn.silu)
    softplus   log(1 + exp(z)), exact for every z (nn.Softplus has a threshold of 20, jax.nn.softplus none)
    leaky_relu(negative_slope=0.01)  z for z > 0, else negative_slope z (nn.LeakyReLU, jax.nn.leaky_relu)
    elu(alpha=1)  z for z > 0, else alpha (exp(z) - 1) (nn.ELU, jax.nn.elu)
    Parameters are written in the name (``reference.specs``): ``"leaky_relu(negative_slope=0.2)"``.

Kinks
    relu'(0) = 0, as torch and JAX define it; leaky_relu'(0) = negative_slope
    (torch; JAX gives 1); elu'(0) = alpha (torch and JAX). relu itself is
    ``np.maximum(z, 0)``, so relu(NaN) is NaN, as in torch and JAX (inputs
    are finite; a NaN can only come from an overflow upstream).

Updates
    theta <- theta - learning_rate * dJ/dtheta (plain gradient descent,
    ``torch.optim.SGD`` without momentum, ``optax.sgd``).

Schedules
    Mini-batch training follows an explicit list of index arrays, made once
    (``reference.batch_schedule``) and handed to every implementation.
    Iterations per epoch = ceil(N / batch_size), or floor when the last
    partial batch is dropped. With a seed, every epoch draws a fresh
    permutation from one ``numpy.random.default_rng(seed)``.

Initialisation
    ``init_params`` draws ``W`` and ``b`` uniformly from
    ``[-1/sqrt(n_in), 1/sqrt(n_in)]``, the bound ``torch.nn.Linear`` uses.

Precision
    The reference computes in float64 whatever dtype comes in.
"""

from __future__ import annotations

ACTIVATIONS: tuple[str, ...] = (
    "identity", "sigmoid", "tanh", "relu", "gelu", "gelu_tanh", "silu", "softplus", "leaky_relu", "elu",
)
LOSSES: tuple[str, ...] = ("mse", "bce", "cross_entropy", "huber", "bce_with_logits")
REDUCTIONS: tuple[str, ...] = ("mean", "sum")

#: Parameters of the names that take any, with their defaults (torch's), in ``reference.specs`` form.
PARAMETERS: dict[str, dict[str, float]] = {
    "leaky_relu": {"negative_slope": 0.01},
    "elu": {"alpha": 1.0},
    "huber": {"delta": 1.0},
    "cross_entropy": {"label_smoothing": 0.0},
}

#: The output activation each loss requires (None: any activation).
REQUIRED_OUTPUT_ACTIVATION: dict[str, str | None] = {
    "mse": None,
    "bce": "sigmoid",
    "cross_entropy": "identity",
    "huber": None,
    "bce_with_logits": "identity",
}

#: The value relu' takes at exactly 0 (torch and JAX agree on 0).
RELU_DERIVATIVE_AT_ZERO = 0.0

#: Where a derivative jumps, the reference takes torch's side:
#: leaky_relu'(0) = negative_slope (torch; JAX's jax.nn.leaky_relu gives 1) and elu'(0) = alpha (torch and JAX).
#: softplus is exact, log(1 + exp(z)) for every z: torch's Softplus returns z itself above threshold = 20 (a
#: known divergence); jax.nn.softplus has no threshold.
SOFTPLUS_TORCH_THRESHOLD = 20.0

#: torch.nn.BCELoss clamps log(p) and log(1 - p) below at this value.
TORCH_BCE_LOG_CLAMP = -100.0


def parameter_name(layer: int, kind: str) -> str:
    """Return the display name of a parameter: ``parameter_name(1, "W") == "W1"``.

    ``layer`` is 1-based, as the documents number layers.
    """
    return f"{kind}{layer}"

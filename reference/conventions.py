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

Kinks
    relu'(0) = 0, as torch and JAX define it. relu itself is
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

ACTIVATIONS: tuple[str, ...] = ("identity", "sigmoid", "tanh", "relu")
LOSSES: tuple[str, ...] = ("mse", "bce", "cross_entropy")
REDUCTIONS: tuple[str, ...] = ("mean", "sum")

#: The output activation each loss requires (None: any activation).
REQUIRED_OUTPUT_ACTIVATION: dict[str, str | None] = {
    "mse": None,
    "bce": "sigmoid",
    "cross_entropy": "identity",
}

#: The value relu' takes at exactly 0 (torch and JAX agree on 0).
RELU_DERIVATIVE_AT_ZERO = 0.0

#: torch.nn.BCELoss clamps log(p) and log(1 - p) below at this value.
TORCH_BCE_LOG_CLAMP = -100.0


def parameter_name(layer: int, kind: str) -> str:
    """Return the display name of a parameter: ``parameter_name(1, "W") == "W1"``.

    ``layer`` is 1-based, as the documents number layers.
    """
    return f"{kind}{layer}"

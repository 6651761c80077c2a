"""Known divergences between the frameworks, exact math and this project's conventions.

One place for every difference the suite knows about: what differs, what the
project does about it, and the test that demonstrates it. The README's
"Known divergences" section and the agreement report are written from this
list (``DIVERGENCES``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Divergence:
    """One known difference, its handling, and the tests that show it."""

    title: str
    frameworks: str
    what_differs: str
    what_we_do: str
    demonstrated_by: tuple[str, ...]


DIVERGENCES: tuple[Divergence, ...] = (
    Divergence(
        title="relu'(0)",
        frameworks="torch, JAX",
        what_differs=(
            "relu is not differentiable at 0; any value in [0, 1] is a subgradient. torch's ReLU backward "
            "and jax.nn.relu's custom JVP both use 0."
        ),
        what_we_do=(
            "The reference uses relu'(0) = 0 (reference.conventions.RELU_DERIVATIVE_AT_ZERO). The strategies "
            "draw dead units (zero rows of W and b) so z is exactly 0 and the convention is checked; a z "
            "within rounding of 0 but not exactly 0 is ambiguous and not compared "
            "(backprop_conformance.suite.tolerances)."
        ),
        demonstrated_by=(
            "tests/test_torch_adapter.py::test_relu_derivative_at_zero_is_zero_in_torch_as_in_the_reference",
            "tests/test_jax_adapter.py::test_divergence_relu_derivative_at_zero_is_zero",
            "tests/test_suite_catches_bugs.py::test_suite_rejects_broken_adapter[relu_derivative_one_at_zero]",
        ),
    ),
    Divergence(
        title="torch.nn.BCELoss clamps log at -100 and damps its gradient near saturation",
        frameworks="torch",
        what_differs=(
            "BCELoss works on probabilities p = sigmoid(z). It clamps log(p) and log(1 - p) at -100, so at "
            "z = 40, target 0, its loss is exactly 100 where exact math gives 40 (float32: from z of about "
            "17, where p rounds to 1). Its backward divides by max(p (1 - p), 1e-12) (a float32 constant "
            "even in float64), so once p (1 - p) < 1e-12 (|z| > 27.6) dJ/dz is damped: 0.69 at z = 28 and "
            "exactly 0 at z = 40, where exact math gives sigmoid(z) - y = 1. In float32 it loses accuracy "
            "long before: relative error about eps / (1 - p), 4e-5 at z = 8."
        ),
        what_we_do=(
            "The reference computes bce from z as softplus(z) - y z: exact, never log(0) "
            "(reference.conventions). The suite does not compare bce outputs with min(p, 1 - p) < sqrt(u) "
            "(float32: |z| > 8.3, float64: |z| > 18.4): outside the promise, documented in "
            "backprop_conformance.suite.tolerances, unless p is beyond doubt exactly 0 or 1 in the dtype "
            "(float32: z > 19.4, float64: z > 39.5): there exact math is compared, and the torch adapter's "
            "result, which matches the variant 'torch BCELoss clamp' it declares as its convention, is a known "
            "divergence. Inside, the loss bound includes BCELoss's u / (1 - p) conditioning."
        ),
        demonstrated_by=(
            "tests/test_torch_adapter.py::test_bce_loss_is_clamped_at_100_where_sigmoid_rounds_to_1",
            "tests/test_torch_adapter.py::test_bce_gradient_is_damped_where_p_times_1_minus_p_is_below_1e_12",
            "tests/test_torch_adapter.py::test_float32_bce_loses_accuracy_as_sigmoid_saturates",
            "tests/test_jax_adapter.py::test_divergence_bce_on_logits_does_not_clamp",
            "tests/test_variants.py::test_torch_bce_clamp_at_a_saturated_output_is_torchs_known_divergence",
        ),
    ),
    Divergence(
        title="JAX kernel layout (n_in, n_out) versus W (n_out, n_in)",
        frameworks="JAX / Flax / optax users",
        what_differs=(
            "Flax Dense kernels are (n_in, n_out) and compute a @ kernel; the documents and torch.nn.Linear "
            "use W of shape (n_out, n_in) and z = W a. A kernel fed as W (or W as a kernel) is silently "
            "wrong on square layers and a shape error otherwise."
        ),
        what_we_do="The JAX adapter keeps kernels inside and transposes at its boundary, with a comment saying so.",
        demonstrated_by=(
            "tests/test_jax_adapter.py::test_divergence_kernel_layout_is_the_transpose_of_ours",
            "tests/test_jax_adapter.py::test_divergence_untransposed_kernel_gives_a_different_output",
            "tests/test_suite_catches_bugs.py::test_suite_rejects_broken_adapter[transposed_square_weight_gradient]",
        ),
    ),
    Divergence(
        title="float32 matmul precision on GPUs (TF32, bf16 passes)",
        frameworks="torch, JAX",
        what_differs=(
            "On recent NVIDIA GPUs, torch.set_float32_matmul_precision('high') lets float32 matmuls use "
            "TF32 (10-bit mantissa, relative error about 1e-3), and JAX's default matmul precision on GPU "
            "uses TF32 or bf16 passes for float32 dots. Any float32 tolerance derived from float32's epsilon "
            "flags that. On CPU, torch's 'medium' also switches oneDNN to bf16 for large matmuls."
        ),
        what_we_do=(
            "Both adapters take matmul_precision='highest' by default and apply it only for the duration of "
            "each call (restoring the caller's setting); reports record the setting. To measure TF32, pass "
            "matmul_precision='high' (torch) or 'tensorfloat32' (JAX) and expect float32 failures."
        ),
        demonstrated_by=(
            "tests/test_torch_adapter.py::test_matmul_precision_is_applied_during_a_call_and_restored_after",
            "tests/test_torch_adapter.py::test_matmul_precision_is_restored_when_a_call_raises",
            "tests/test_jax_adapter.py::test_matmul_precision_is_applied_inside_calls",
        ),
    ),
    Divergence(
        title="float64 in JAX needs x64 mode",
        frameworks="JAX",
        what_differs=(
            "JAX computes in float32 unless jax_enable_x64 is set, and that flag is process-wide by default."
        ),
        what_we_do=(
            "The JAX adapter enables x64 only around its own calls (scoped), so a caller's float32 code is "
            "unaffected."
        ),
        demonstrated_by=("tests/test_jax_adapter.py::test_x64_is_scoped_to_each_call",),
    ),
)

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
    Divergence(
        title="gelu: exact (torch) or the tanh approximation (jax.nn.gelu's default)",
        frameworks="torch, JAX",
        what_differs=(
            "torch.nn.GELU() is exact, z Phi(z) with erf; jax.nn.gelu defaults to approximate=True, the tanh "
            "approximation. They are up to 4.7e-4 apart in value (near z = +-2.70) and 8.7e-4 in gradient (near "
            "z = 2.02)."
        ),
        what_we_do=(
            "'gelu' is exact and 'gelu_tanh' the approximation, in the reference and both adapters (the JAX adapter "
            "passes approximate=False for 'gelu'). An adapter that computes the other one is diagnosed as the "
            "variant 'gelu with the tanh approximation'."
        ),
        demonstrated_by=(
            "tests/test_modern_pieces.py::test_divergence_gelu_tanh_approximation_is_up_to_4_7e_4_in_value_and_8_7e_4_in_gradient",
            "tests/test_modern_pieces.py::test_divergence_jax_gelu_defaults_to_the_tanh_approximation",
            "tests/test_variants.py::test_each_variant_is_rejected_and_named[gelu with the tanh approximation]",
        ),
    ),
    Divergence(
        title="softplus: torch returns z above threshold = 20",
        frameworks="torch",
        what_differs=(
            "torch.nn.Softplus (beta=1, threshold=20) returns z itself, with gradient exactly 1, where z > 20; "
            "exact math and jax.nn.softplus give z + log1p(exp(-z)): 1.25e-9 more at z = 20.5, visible in float64."
        ),
        what_we_do=(
            "The reference is exact. The torch adapter declares the convention 'softplus threshold 20', so a "
            "float64 difference it explains is a known divergence; a z within rounding of 20 is ambiguous (the "
            "kink rule) and not compared."
        ),
        demonstrated_by=(
            "tests/test_modern_pieces.py::test_divergence_torch_softplus_returns_z_above_its_threshold",
            "tests/test_variants.py::test_torch_softplus_threshold_is_torchs_known_divergence",
        ),
    ),
    Divergence(
        title="leaky_relu'(0): the slope in torch, 1 in JAX; Keras's default slope is 0.2",
        frameworks="torch, JAX, Keras",
        what_differs=(
            "At exactly 0 torch's LeakyReLU backward gives the slope and jax.nn.leaky_relu (jnp.where(x >= 0, ...)) "
            "gives 1. Keras's LeakyReLU defaults to negative_slope 0.2, torch's and JAX's to 0.01."
        ),
        what_we_do=(
            "The reference follows torch (leaky_relu'(0) = negative_slope); the JAX adapter declares the "
            "convention \"leaky_relu'(0) = 1\", checked at dead units. The variant \"leaky_relu's slope 0.2\" "
            "diagnoses Keras's default where torch's was asked; Keras is not installed here, so that default is "
            "stated, not demonstrated."
        ),
        demonstrated_by=(
            "tests/test_modern_pieces.py::test_divergence_leaky_relu_at_zero_is_the_slope_in_torch_and_1_in_jax",
            "tests/test_variants.py::test_jax_leaky_relu_at_zero_is_jaxs_known_divergence",
        ),
    ),
    Divergence(
        title="Factors of squared and Huber losses: optax.l2_loss, torch.nn.SmoothL1Loss",
        frameworks="optax, torch",
        what_differs=(
            "optax.l2_loss is 1/2 optax.squared_error; torch.nn.SmoothL1Loss(beta) is HuberLoss(delta=beta) / beta."
        ),
        what_we_do=(
            "'mse' is the squared error without 1/2 (MSELoss, optax.squared_error) and 'huber' is HuberLoss and "
            "optax.huber_loss; the variants 'mse with a factor 1/2' and 'huber divided by delta' name the others."
        ),
        demonstrated_by=(
            "tests/test_modern_pieces.py::test_divergence_optax_l2_loss_has_a_factor_one_half",
            "tests/test_modern_pieces.py::test_divergence_torch_smooth_l1_is_huber_divided_by_beta",
        ),
    ),
    Divergence(
        title="RMSprop: eps outside or inside the root, decay 0.99 or 0.9",
        frameworks="torch.optim, optax",
        what_differs=(
            "torch.optim.RMSprop divides by sqrt(v) + eps with alpha 0.99; optax.rmsprop by sqrt(v + eps) with "
            "decay 0.9: at g = 1e-4 torch's first step is 10x optax's (eps 1e-8, same alpha), sqrt(10) from the "
            "decay alone. optax.rmsprop(eps_in_sqrt=False) divides as torch does; the optax convention is its "
            "default, eps_in_sqrt=True."
        ),
        what_we_do=(
            "reference.Optimizer(\"rmsprop\", convention=\"torch\" or \"optax\") computes each; each framework "
            "is checked in its own; the report's optimizer table shows them 0.35 apart after 16 steps."
        ),
        demonstrated_by=(
            "tests/test_optimizer_divergences.py::test_rmsprop_eps_outside_the_root_in_torch_inside_in_optax_10x_at_g_1e_4",
            "tests/test_optimizer_divergences.py::test_rmsprop_default_alpha_0_99_in_torch_0_9_in_optax_sqrt_10_on_the_first_step",
            "tests/test_optimizer_divergences.py::test_optax_rmsprop_eps_in_sqrt_false_is_torchs_rule_at_the_same_alpha",
            "tests/test_report_optimizers.py::test_the_conventions_are_as_far_apart_as_their_causes_make_them",
        ),
    ),
    Divergence(
        title="Adagrad: accumulator from 0 or 0.1, eps 1e-10 outside or 1e-7 inside the root",
        frameworks="torch.optim, optax",
        what_differs=("At each one's defaults the first steps at g = 1e-3 are 99.7% apart (optax's is 1/316 of "
                      "torch's)."),
        what_we_do="Both conventions in the reference; torch's lr_decay has no optax counterpart and is refused there.",
        demonstrated_by=("tests/test_optimizer_divergences.py::test_adagrad_accumulator_0_or_0_1_and_eps_outside_or_inside_the_root_99_7_percent_apart_at_g_1e_3",),
    ),
    Divergence(
        title="SGD momentum: torch's first buffer is g, undampened; optax has no dampening",
        frameworks="torch.optim, optax",
        what_differs=(
            "torch.optim.SGD sets the buffer to g on the first step and applies (1 - dampening) from the second; "
            "optax.sgd's trace starts at 0 and adds the whole gradient. They agree when dampening = 0."
        ),
        what_we_do=(
            "The optax convention refuses dampening; the variant \"the momentum buffer started at zero\" names "
            "an implementation that dampens the first step under torch's convention."
        ),
        demonstrated_by=("tests/test_optimizer_divergences.py::test_sgd_torch_first_momentum_step_ignores_dampening_optax_has_no_dampening",
                         "tests/test_optimizer_variants.py::test_each_optimizer_bug_is_rejected_and_named"),
    ),
    Divergence(
        title="AMSGrad: the maximum of the raw v or of the bias-corrected v",
        frameworks="torch.optim, optax",
        what_differs=(
            "torch.optim.Adam(amsgrad=True) keeps max(v_t) and divides it by sqrt(1 - beta2^t); optax.amsgrad "
            "keeps max(v_t / (1 - beta2^t)). After a large then a small gradient step 2 is 29% apart "
            "(1 - 1/sqrt(1 + beta2))."
        ),
        what_we_do="Both conventions in the reference; optax.adamw has no amsgrad and the optax convention refuses it.",
        demonstrated_by=("tests/test_optimizer_divergences.py::test_amsgrad_max_of_raw_v_in_torch_of_bias_corrected_v_in_optax_29_percent_apart_at_step_2",),
    ),
    Divergence(
        title="AdamW's default weight decay, and its factor in float32",
        frameworks="torch.optim, optax",
        what_differs=(
            "torch.optim.AdamW defaults weight_decay to 1e-2, optax.adamw to 1e-4 (100x the decay per step). torch "
            "multiplies the params by (1 - lr weight_decay), a Python float rounded to float32 for float32 params: "
            "below lr weight_decay = 2^-25 it is 1.0 and nothing decays; at lr 1e-3, weight_decay 1e-4 it is "
            "1 - 2^-23, a decay 19.2% too strong. optax adds weight_decay theta to the direction before rounding; "
            "over 50 steps torch's mean float32 error is 7.2x optax's there."
        ),
        what_we_do=(
            "Each convention's default in the reference; the float32 rounding of the factor is within the "
            "tolerance model (suite.tolerance_optimizers)."
        ),
        demonstrated_by=(
            "tests/test_optimizer_divergences.py::test_adamw_default_weight_decay_1e_2_in_torch_1e_4_in_optax_100x_the_decay",
            "tests/test_optimizer_divergences.py::"
            "test_adamw_float32_torch_rounds_1_minus_lr_wd_no_decay_below_2_to_minus_25_and_19_percent_too_much_at_1e_7",
        ),
    ),
    Divergence(
        title="optax-only settings; torch.optim's foreach and fused paths",
        frameworks="optax, torch.optim on CUDA",
        what_differs=(
            "optax's adam takes eps_root, eps inside the root, and nesterov (NAdam without torch.optim.NAdam's "
            "momentum schedule); its rmsprop takes initial_scale, bias_correction, nesterov and eps_in_sqrt=True. "
            "torch has no way to express any of them. On CUDA "
            "torch.optim defaults to its foreach path and offers fused=True: the same rules with other rounding "
            "(fused kernels compute a step in registers and may contract multiply-adds)."
        ),
        what_we_do=(
            "The reference models each in the optax convention; the torch convention refuses each by name "
            "(reference.optimizers.INEXPRESSIBLE). The torch adapter runs the single-tensor path (foreach=False, "
            "the CPU's default); torch-float32-foreach, torch-float64-fused and the like run the other two, "
            "checked on the CPU like the single path. Their CUDA kernels are not checked here, having no GPU in CI."
        ),
        demonstrated_by=(
            "tests/test_optimizer_divergences.py::test_eps_root_is_optax_only_torch_refuses_it_and_it_shrinks_the_first_step_1_over_sqrt_2_at_g_1e_4",
            "tests/test_reference_optimizers.py::test_a_bad_setting_is_refused_naming_the_field_and_value",
        ),
    ),
    Divergence(
        title="optax's centered RMSprop with bias correction: zero variance at step 1",
        frameworks="optax",
        what_differs=(
            "At step 1 the bias-corrected moments are g^2 and g, so the variance g^2 - g^2 is 0 in exact math and "
            "the step is lr g / sqrt(eps): 100 g at lr 0.01. optax computes it by cancellation: in float32 "
            "(x64 off) 0.39% of 100,000 N(0, 1) entries come out NaN; with eps_in_sqrt=False, 18.7% in float64."
        ),
        what_we_do=(
            "The reference takes step 1's variance expanded, alpha initial_scale / (1 - alpha), where nothing "
            "cancels: exact. From an initial_scale below 0.01 it is ill-conditioned for optax and outside the "
            "tolerance model, and the strategies draw centered with bias_correction only above it."
        ),
        demonstrated_by=("tests/test_optimizer_divergences.py::"
                         "test_optax_centered_rmsprop_with_bias_correction_divides_by_sqrt_eps_at_step_1_and_gives_nan_in_float32",),
    ),
)

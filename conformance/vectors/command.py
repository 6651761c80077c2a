"""``backprop vectors --out DIR [--seed N] [--count N]``: golden test vectors for code in any language.

Writes ``DIR/vectors.json`` and its JSON Schema ``DIR/vectors.schema.json``,
published as one switch (``common.publish``): a reader sees the previous
pair or the new one, whole. The file follows Wycheproof's layout: a header,
``notes`` for each flag, and ``tests``, each with a ``tcId``, ``flags`` and
a ``result`` (``vectors.records``). Deterministic: one seed gives the same
bytes on every machine with the same version of this package.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from backprop_conformance.common.files import OutputError, check_output_directory
from backprop_conformance.common.machine import package_version
from backprop_conformance.common.publish import publish
from backprop_conformance.vectors.catalogue import DEFAULT_COUNT, vector_cases
from backprop_conformance.vectors.records import DTYPES, vector_record

VECTORS_FILE = "vectors.json"
SCHEMA_FILE = "vectors.schema.json"
FORMAT = "backprop-conformance-vectors/1"

NOTES = {
    "document": "One of the three documents' networks, with their params, data and schedule.",
    "grid": "Every activation x loss x reduction x bias on a 3-4-k network, trained two epochs.",
    "dead-units": "Units with W and b rows of zeros: z is exactly 0, where the activation's kink convention "
                  "decides the gradient (see the test's conventions).",
    "saturated": "bce with sigmoid(z) = 1 beyond doubt in every dtype: implementations that clamp "
                 "probabilities (torch's BCELoss) differ here.",
    "softplus-threshold": "softplus at z > 20, where torch's Softplus returns z instead of softplus(z).",
    "width-1": "A layer of one unit.",
    "batch-1": "A batch of one sample.",
    "wide-batch": "A batch of 16 samples.",
    "deep": "Five layers of different activations.",
    "optimizer": "expected.train is training with the test's optimizer (momentum, Nesterov, weight decay, Adam, "
                 "AMSGrad, AdamW, RMSprop, Adagrad), in torch's or optax's convention, on the same draw for both.",
    "random": "A network drawn from the seed: 1 to 4 layers of width 1 to 6, any activations and loss.",
}

HEADER = [
    "Golden vectors of backprop-conformance: small MLPs, their loss, gradients, one gradient-descent step "
    "and a short training run, computed by the float64 NumPy reference.",
    "An implementation computing in dtype D agrees on a test when, for every array, "
    "|actual - expected| <= tolerance[D] entry by entry; tolerance[D] is null where the tolerance model "
    "promises nothing in D (outside_model says why).",
    "Layout: W is (n_out, n_in), z = a @ W.T + b per row of x; y is (m, n_L) floats, or (m,) class indices "
    "for cross_entropy; batches are index lists into x, one per iteration; 'step' is params after one "
    "gradient-descent step on the whole batch; 'train' the loss before each iteration's update and the "
    "final params.",
    "result: valid, exact math; acceptable, a convention of the reference decides these numbers "
    "(conventions names it; an implementation with another convention differs there). variants names "
    "the known deviations (backprop-conformance's catalogue) that could change the test's numbers.",
]


def vectors_document(seed: int, count: int = DEFAULT_COUNT) -> dict[str, Any]:
    """Return the whole vectors file for ``seed`` with ``count`` random networks."""
    tests = [vector_record(identifier, vector)
             for identifier, vector in enumerate(vector_cases(seed, count), start=1)]
    return {
        "format": FORMAT,
        "generatorVersion": f"backprop-conformance {package_version('backprop-conformance')}",
        "schema": SCHEMA_FILE,
        "seed": seed,
        "count": count,
        "dtypes": list(DTYPES),
        "numberOfTests": len(tests),
        "header": HEADER,
        "notes": NOTES,
        "tests": tests,
    }


def vectors_bytes(document: dict[str, Any]) -> bytes:
    """Return the file's bytes: JSON, every float by ``repr`` (round-trips), no NaN or infinity.

    The header is indented; each test is one compact line, so that the file
    stays small and a diff between two versions names the tests that moved.
    """
    head = json.dumps({key: value for key, value in document.items() if key != "tests"}, indent=1,
                      allow_nan=False)
    tests = ",\n".join(json.dumps(test, separators=(",", ":"), allow_nan=False) for test in document["tests"])
    return f'{head[:-2]},\n "tests": [\n{tests}\n ]\n}}\n'.encode()


def schema_bytes() -> bytes:
    """Return the JSON Schema of the vectors file, as shipped in the package."""
    return resources.files("backprop_conformance.vectors").joinpath(SCHEMA_FILE).read_bytes()


def run(arguments: argparse.Namespace) -> int:
    """Write the vectors and their schema into ``arguments.out``; return the exit status."""
    out = Path(arguments.out)
    try:
        check_output_directory(out)
        document = vectors_document(arguments.seed, arguments.count)
        published = publish(out, {VECTORS_FILE: vectors_bytes(document), SCHEMA_FILE: schema_bytes()}, "vectors")
    except OutputError as error:
        print(f"backprop vectors: {error}", file=sys.stderr)
        return 2
    print(f"wrote {document['numberOfTests']} test vectors to {published / VECTORS_FILE} "
          f"(schema: {published / SCHEMA_FILE})")
    return 0


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the ``vectors`` subcommand to ``commands`` and return its parser."""
    from backprop_conformance.common.arguments import non_negative_int

    parser = commands.add_parser(
        "vectors",
        help="write golden test vectors (JSON, with a JSON Schema) for code in any language",
        description="Write golden test vectors: the documents' networks, every activation x loss x reduction x "
        "bias, edge cases and seeded random networks, each with the reference's output, loss, gradients, one "
        "step and a short training run, and the tolerance per dtype. Deterministic for a seed.",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="directory for vectors.json and its schema")
    parser.add_argument("--seed", type=non_negative_int, default=0, metavar="N", help="seed of the drawn cases (0)")
    parser.add_argument("--count", type=non_negative_int, default=DEFAULT_COUNT, metavar="N",
                        help=f"random networks beyond the fixed coverage ({DEFAULT_COUNT})")
    parser.set_defaults(run=run)
    return parser

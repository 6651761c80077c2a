"""backprop-conformance: a NumPy backprop oracle, and a suite that checks other implementations against it.

One import root for the whole project::

    from backprop_conformance import reference, adapters

``reference``   the oracle (NumPy and the standard library only);
``adapters``    PyTorch, JAX and anyone's implementation behind one protocol;
``suite``       the Hypothesis conformance suite (``pytest --pyargs backprop_conformance``);
``report``      the agreement report (``backprop report``);
``bench``       the benchmark (``backprop bench``);
``common``      what the three above share.

Importing this package imports nothing else: each subpackage is imported
when it is asked for.
"""

#: The release (pyproject.toml reads it from here).
__version__ = "0.2.0"

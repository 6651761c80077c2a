"""Golden test vectors: the reference's numbers and the tolerance model's allowances, as JSON for any language.

``catalogue`` chooses the cases, ``records`` computes one vector,
``command`` is ``backprop vectors``; ``vectors.schema.json`` is the file's
JSON Schema.
"""

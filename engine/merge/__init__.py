"""Merging checkpoints with mergekit's methods, one tensor at a time (Qt-free, no Session).

`spec` checks a merge request (the `merge` edit's fields, or a mergekit YAML read by
`yaml_config`); `inputs` opens the models lazily through the io layer's readers; `plan`
matches their tensors by name and checks shapes and dtypes; `methods` holds the math;
`compute.Merger` makes one merged tensor at a time; `streaming` makes an output
document whose tensors are merged when a save writes them, so the command line streams
from the inputs to the output without holding the model.
"""

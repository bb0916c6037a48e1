"""`serving_root`: the object a TF Serving SavedModel is saved from.

TF Serving never rebuilds the Python object graph. Its C++ loader imports
the `serve` MetaGraphDef into a Session, runs the saver's restore op, runs
the init op and feeds the signature tensors by name. So every variable a
signature function reads must be restored by that saver, under the name the
function reads it by.

A Keras 3 layer holds `keras.Variable`s, each a wrapper around a
`tf.Variable`. When the layer (or a `tf.Module` holding it) is saved, the
wrapper is serialized but the `tf.Variable` the traced functions read is not
in the object graph: `tf.saved_model.load` still works (it rebuilds the
objects), while the Session loader fails with "Could not find variable
dense/bias" on the first request (tensorflow/tensorflow#72963).

The root built here tracks exactly what the signatures need: the
`tf.Variable`s their concrete functions capture (each once, so weights are
stored once and no optimizer state is shipped) and the resources (lookup
tables with their assets) found in the exported object.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import tensorflow as tf

from keras_rec.object_identity import unique_by_identity


def serving_root(exported: Any, functions: Iterable[Any]) -> tf.Module:
    """The trackable to `tf.saved_model.save` for `functions` of `exported`.

    Args:
        exported: the Keras model, layer or `tf.Module` the functions call.
            Only its resources (lookup tables and their assets) are taken.
        functions: the signature `ConcreteFunction`s.

    Returns:
        A `tf.Module` tracking the captured `tf.Variable`s as `tf_variables`
        and the resources as `resources`.
    """
    resource_type = tf.saved_model.experimental.TrackableResource
    root = tf.Module(name="serving_root")
    root.tf_variables = unique_by_identity(
        variable for function in functions for variable in function.variables
    )
    root.resources = unique_by_identity(
        trackable
        for trackable in tf.train.TrackableView(exported).descendants()
        if isinstance(trackable, resource_type)
    )
    return root

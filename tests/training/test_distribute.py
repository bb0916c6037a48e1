import pytest
import tensorflow as tf

from keras_rec.training.distribute import get_strategy


def test_strategies_by_name(monkeypatch):
    assert get_strategy("none") is tf.distribute.get_strategy()
    assert isinstance(get_strategy("mirrored"), tf.distribute.MirroredStrategy)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs `TF_CONFIG`"):
        get_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        get_strategy("multi_worker")
    with pytest.raises(ValueError, match="must be one of"):
        get_strategy("horovod")

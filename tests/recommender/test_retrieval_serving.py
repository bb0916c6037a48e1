"""Served retrieval graphs: exported results equal in-memory ones; fallbacks; width errors."""

import numpy as np
import pytest
import tensorflow as tf

from keras_rec.recommender.layers.tower import build_tower
from keras_rec.recommender.serving.retrieval_serving import (
    QueryRetrieval,
    UserRetrieval,
    ranker_serving_function,
    tower_serving_function,
)
from keras_rec.serving import export

DIM, USERS, ITEMS, K = 6, 12, 30, 5


@pytest.fixture(scope="module")
def parts():
    rng = np.random.default_rng(0)
    tower = build_tower(
        DIM,
        "user_tower",
        output_dim=4,
        hidden_units=(8,),
        id_vocabulary_size=USERS + 1,
        feature_dim=DIM,
    )
    user_inputs = {
        "embedding": rng.normal(size=(USERS, DIM)).astype("float32"),
        "features": rng.normal(size=(USERS, DIM)).astype("float32"),
        "id": np.arange(1, USERS + 1, dtype="int64"),
    }
    item_vectors = rng.normal(size=(ITEMS, 4)).astype("float32")
    seen = [
        rng.choice(ITEMS, size=rng.integers(0, 6), replace=False).tolist() for _ in range(USERS)
    ]
    return tower, user_inputs, item_vectors, seen


def _user_retrieval(parts, **kwargs):
    tower, user_inputs, item_vectors, seen = parts
    return UserRetrieval(
        tower(user_inputs).numpy(),
        np.arange(100, 100 + USERS),
        item_vectors,
        item_ids=np.arange(1000, 1000 + ITEMS),
        item_titles=[f"t{i}" for i in range(ITEMS)],
        k=K,
        popular_items=np.arange(ITEMS)[::-1],
        popular_scores=np.linspace(1, 0, ITEMS),
        seen_items=seen,
        **kwargs,
    )


def _reference(parts, user_rows):
    tower, user_inputs, item_vectors, seen = parts
    queries = tower({k: v[user_rows] for k, v in user_inputs.items()}).numpy()
    scores = queries @ item_vectors.T
    for row, user in enumerate(user_rows):
        scores[row, seen[user]] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :K]
    return top + 1000, np.take_along_axis(scores, top, 1)


def test_exported_user_retrieval_equals_in_memory_and_numpy(parts, tmp_path):
    module = _user_retrieval(parts)
    user_ids = np.array([100, 105, 111, 103], "int64")
    in_memory = {k: v.numpy() for k, v in module.serve(tf.constant(user_ids)).items()}
    expected_ids, expected_scores = _reference(parts, user_ids - 100)
    np.testing.assert_array_equal(in_memory["item_ids"], expected_ids)
    np.testing.assert_allclose(in_memory["scores"], expected_scores, atol=1e-5)
    assert in_memory["known_user"].all()

    result = export(
        module,
        tmp_path,
        "retrieval",
        examples={"user_id": user_ids},
        signatures={"serving_default": module.serve},
        chief=True,
    )
    assert result.serving_check["ok"]
    served = tf.saved_model.load(result.path).signatures["serving_default"]
    outputs = served(user_id=tf.constant(user_ids))
    np.testing.assert_array_equal(outputs["item_ids"].numpy(), in_memory["item_ids"])
    np.testing.assert_allclose(outputs["scores"].numpy(), in_memory["scores"], atol=1e-6)
    assert outputs["titles"].numpy()[0, 0].decode() == f"t{expected_ids[0, 0] - 1000}"


def test_unknown_user_gets_the_popular_items(parts):
    module = _user_retrieval(parts)
    outputs = module.serve(tf.constant([104, 424242], "int64"))
    assert outputs["known_user"].numpy().tolist() == [True, False]
    np.testing.assert_array_equal(outputs["item_ids"].numpy()[1], 1000 + np.arange(ITEMS)[::-1][:K])
    np.testing.assert_allclose(
        outputs["scores"].numpy()[1], np.linspace(1, 0, ITEMS)[:K], atol=1e-6
    )


def test_width_mismatches_are_named(parts):
    tower, user_inputs, item_vectors, seen = parts
    user_vectors = tower(user_inputs).numpy()
    with pytest.raises(ValueError, match="the item vectors has width 3 but the model expects 4"):
        UserRetrieval(
            user_vectors,
            np.arange(USERS),
            item_vectors[:, :3],
            np.arange(ITEMS),
            ["t"] * ITEMS,
            K,
            np.arange(ITEMS),
            np.ones(ITEMS),
        )
    with pytest.raises(ValueError, match="`user_vectors` has 11 rows for 12 users"):
        UserRetrieval(
            user_vectors[:-1],
            np.arange(USERS),
            item_vectors,
            np.arange(ITEMS),
            ["t"] * ITEMS,
            K,
            np.arange(ITEMS),
            np.ones(ITEMS),
        )


def test_query_retrieval_finds_an_item_by_its_text(tiny_hub_dir):
    from keras_rec.embeddings.text_embedder import text_embedder

    texts = ["toy story", "star wars", "the movie of the story", "wars of the stars", "a"]
    embed = text_embedder(hub_dir=tiny_hub_dir)
    vectors = embed(texts)
    module = QueryRetrieval(
        f"{tiny_hub_dir}/preprocess",
        f"{tiny_hub_dir}/encoder",
        vectors,
        np.arange(5) + 7,
        texts,
        k=2,
    )
    outputs = module.serve(tf.constant(["star wars", "toy story"]))
    np.testing.assert_array_equal(outputs["item_ids"].numpy()[:, 0], [8, 7])
    np.testing.assert_allclose(outputs["scores"].numpy()[:, 0], 1.0, atol=1e-5)
    with pytest.raises(
        ValueError,
        match=f"the item embeddings has width 7 but the model expects {vectors.shape[1]}",
    ):
        QueryRetrieval(
            f"{tiny_hub_dir}/preprocess",
            f"{tiny_hub_dir}/encoder",
            np.ones((5, 7), "float32"),
            np.arange(5),
            texts,
            k=2,
        )


def test_tower_and_ranker_serving_functions(parts):
    from keras_rec.recommender.layers.ranker import build_ranker

    tower, user_inputs, _, _ = parts
    serve = tower_serving_function(tower)
    vectors = serve(*[tf.constant(user_inputs[name][:3]) for name in sorted(user_inputs)])
    np.testing.assert_allclose(
        vectors["vector"].numpy(),
        tower({k: v[:3] for k, v in user_inputs.items()}).numpy(),
        atol=1e-6,
    )
    ranker = build_ranker(DIM, 4)
    user, item = user_inputs["embedding"][:3], np.ones((3, 4), "float32")
    scores = ranker_serving_function(ranker)(item=tf.constant(item), user=tf.constant(user))
    np.testing.assert_allclose(
        scores["score"].numpy(), ranker({"user": user, "item": item}).numpy()[:, 0], atol=1e-6
    )


def test_items_never_trained_are_retrieved_from_their_text():
    """Users who like held-out items get them back, though those items never trained."""
    import keras

    from keras_rec.recommender.layers.two_tower_retrieval import TwoTowerRetrieval

    rng = np.random.default_rng(4)
    num_items, cold = 40, np.arange(30, 40)
    item_text = rng.normal(size=(num_items, 8)).astype("float32")
    liked = rng.integers(0, 30, size=2000)  # training pairs touch warm items only
    user_text = item_text[liked] + 0.3 * rng.normal(size=(2000, 8)).astype("float32")
    item_index = np.where(np.arange(num_items) < 30, np.arange(num_items) + 1, 0)
    common = dict(output_dim=8, hidden_units=(32,), dropout=0.0, weight_decay=0.0)
    model = TwoTowerRetrieval(
        build_tower(8, "user_tower", **common),
        build_tower(8, "item_tower", id_vocabulary_size=num_items + 1, id_dropout=0.5, **common),
        temperature=0.1,
    )
    model.compile(optimizer=keras.optimizers.Adam(5e-3))
    model.fit(
        {
            "user": {"embedding": user_text},
            "item": {"embedding": item_text[liked], "id": item_index[liked]},
            "item_key": liked.astype("int64"),
        },
        epochs=15,
        batch_size=64,
        verbose=0,
    )
    item_vectors = model.item_tower({"embedding": item_text, "id": item_index}).numpy()
    # New users, each liking one cold item.
    wanted = np.repeat(cold, 3)
    new_users = item_text[wanted] + 0.3 * rng.normal(size=(len(wanted), 8)).astype("float32")
    module = UserRetrieval(
        model.user_tower({"embedding": new_users}).numpy(),
        np.arange(len(wanted)),
        item_vectors,
        np.arange(num_items),
        [str(i) for i in range(num_items)],
        k=5,
        popular_items=np.arange(num_items),
        popular_scores=np.ones(num_items),
    )
    returned = module.serve(tf.constant(np.arange(len(wanted)), tf.int64))["item_ids"].numpy()
    hit_rate = np.mean([w in row for w, row in zip(wanted, returned)])
    assert hit_rate > 0.8, hit_rate  # chance: 5 of 40

"""utils.evaluate against hand-made probabilities and sklearn.metrics."""

import csv

import keras
import numpy as np
import pytest
import sklearn.metrics
import tensorflow as tf
from PIL import Image

from utils import evaluate

# P(dog) for eight images; classes are 0 = cats, 1 = dogs.
P_DOG = np.array([0.90, 0.20, 0.55, 0.48, 0.05, 0.99, 0.72, 0.30])
LABELS = np.array([1, 0, 0, 1, 0, 1, 0, 1])
# predicted:        1  0  1  0  0  1  1  0  → correct: 0, 1, 4, 5; wrong: 2, 3, 6, 7


@pytest.fixture
def predictions():
    return evaluate.Predictions(evaluate.as_probabilities(P_DOG), LABELS, ["cats", "dogs"])


def test_a_sigmoid_output_becomes_two_columns():
    np.testing.assert_allclose(evaluate.as_probabilities(np.array([[0.25], [1.0]])),
                               [[0.75, 0.25], [0.0, 1.0]])


def test_most_uncertain_is_closest_to_one_half(predictions):
    np.testing.assert_array_equal(evaluate.error_panels(predictions, 3)["most uncertain"], [3, 2, 7])


def test_most_confident_incorrect_per_predicted_class(predictions):
    panels = evaluate.error_panels(predictions)
    # wrongly called dogs: image 6 (0.72) before image 2 (0.55)
    np.testing.assert_array_equal(panels["most confident incorrect: predicted dogs"], [6, 2])
    # wrongly called cats: image 7 (P(cat) 0.70) before image 3 (0.52)
    np.testing.assert_array_equal(panels["most confident incorrect: predicted cats"], [7, 3])


def test_most_confident_correct_per_class(predictions):
    panels = evaluate.error_panels(predictions)
    np.testing.assert_array_equal(panels["most confident correct: dogs"], [5, 0])
    np.testing.assert_array_equal(panels["most confident correct: cats"], [4, 1])


def test_random_picks_are_right_or_wrong_and_reproducible(predictions):
    correct = evaluate.error_panels(predictions, 3, seed=1)["random correct"]
    wrong = evaluate.error_panels(predictions, 10, seed=1)["random incorrect"]
    assert set(correct) <= {0, 1, 4, 5} and len(correct) == 3
    assert sorted(wrong) == [2, 3, 6, 7]
    np.testing.assert_array_equal(correct, evaluate.error_panels(predictions, 3, seed=1)["random correct"])
    picks = {tuple(evaluate.error_panels(predictions, 3, seed=seed)["random correct"]) for seed in range(10)}
    assert len(picks) > 1, "another seed must be able to pick other photos"


def test_error_panels_has_the_five_kinds(predictions):
    titles = list(evaluate.error_panels(predictions))
    assert titles == ["random correct", "random incorrect", "most confident correct: cats",
                      "most confident correct: dogs", "most confident incorrect: predicted cats",
                      "most confident incorrect: predicted dogs", "most uncertain"]


def test_report_matches_sklearn(predictions):
    report = evaluate.report(predictions)
    predicted = (P_DOG > 0.5).astype(int)
    precision, recall, f1, support = sklearn.metrics.precision_recall_fscore_support(LABELS, predicted)
    for index, name in enumerate(["cats", "dogs"]):
        assert report[name]["precision"] == pytest.approx(precision[index])
        assert report[name]["recall"] == pytest.approx(recall[index])
        assert report[name]["f1"] == pytest.approx(f1[index])
        assert report[name]["support"] == support[index]
    assert report["accuracy"] == pytest.approx(sklearn.metrics.accuracy_score(LABELS, predicted))


def test_report_tells_precision_from_recall():
    # 3 cats, 2 dogs; two cats called dogs: cats' precision 1.0 and recall 1/3, dogs' precision 0.5 and recall 1.0
    labels = np.array([0, 0, 0, 1, 1])
    report = evaluate.report(evaluate.Predictions(
        evaluate.as_probabilities(np.array([0.1, 0.8, 0.7, 0.9, 0.6])), labels, ["cats", "dogs"]))
    assert report["cats"] == pytest.approx({"precision": 1.0, "recall": 1 / 3, "f1": 0.5, "support": 3})
    assert report["dogs"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 2})
    assert report["accuracy"] == pytest.approx(0.6)


def test_predict_keeps_predictions_next_to_labels():
    images = np.arange(10, dtype="float32").reshape(10, 1)
    labels = (np.arange(10) % 2).astype("int32")
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(3)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, activation="sigmoid")])
    model.set_weights([np.array([[1.0]]), np.array([-4.5])])  # P(class 1) > 0.5 when image ≥ 5
    result = evaluate.predict(model, dataset, class_names=["low", "high"])
    np.testing.assert_array_equal(result.labels, labels)
    np.testing.assert_array_equal(result.predicted, (np.arange(10) >= 5).astype(int))
    assert result.class_names == ["low", "high"]


def test_submission_has_one_sorted_clipped_row_per_image(tmp_path):
    test_folder = tmp_path / "test" / "unknown"
    test_folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for identifier in (10, 2, 1, 33):
        Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(
            test_folder / f"{identifier}.jpg")
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2, activation="softmax")])
    model.set_weights([np.array([[-1.0, 1.0]] * 3), np.zeros(2)])  # confidently "dog"
    rows = evaluate.submission(model, tmp_path / "test", tmp_path / "submission.csv")
    with open(tmp_path / "submission.csv") as file:
        table = list(csv.reader(file))
    assert rows == 4 and table[0] == ["id", "label"]
    assert [int(row[0]) for row in table[1:]] == [1, 2, 10, 33]
    assert all(float(row[1]) == pytest.approx(0.98) for row in table[1:])
    model.set_weights([np.array([[1.0, -1.0]] * 3), np.zeros(2)])  # confidently "cat"
    evaluate.submission(model, tmp_path / "test", tmp_path / "cats.csv")
    with open(tmp_path / "cats.csv") as file:
        assert all(float(row[1]) == pytest.approx(0.02) for row in list(csv.reader(file))[1:])


def test_a_submission_is_never_written_into_a_finished_runs_folder(tmp_path, monkeypatch):
    from utils import paths, runs

    monkeypatch.setattr(paths, "MODELS", tmp_path / "models")
    (tmp_path / "test").mkdir()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "test" / "1.jpg")
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2, activation="softmax")])
    run = runs.start("03_cnn_from_scratch", sample=True)
    assert evaluate.submission(model, tmp_path / "test", run.folder / "submission.csv") == 1
    runs.finish(run, 0.5, "val_accuracy")
    before = (run.folder / "submission.csv").read_bytes()
    with pytest.raises(ValueError, match="is a finished run, whose files are never written again"):
        evaluate.submission(model, tmp_path / "test", run.folder / "submission.csv")  # the cell run again
    assert (run.folder / "submission.csv").read_bytes() == before


def test_submission_rejects_missing_or_misnamed_images(tmp_path):
    with pytest.raises(ValueError, match="no test images"):
        evaluate.submission(None, tmp_path, tmp_path / "s.csv")
    Image.new("RGB", (8, 8)).save(tmp_path / "cat.1.jpg")
    with pytest.raises(ValueError, match="named <id>.jpg"):
        evaluate.submission(None, tmp_path, tmp_path / "s.csv")




def test_a_submission_refuses_test_files_not_named_by_their_id(tmp_path):
    (tmp_path / "test").mkdir()
    for name in ("1.jpg", "cat.7.jpg"):  # a labelled photo among Kaggle's test photos
        Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "test" / name)
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2, activation="softmax")])
    with pytest.raises(ValueError, match=r"\['cat.7.jpg'\] are not: pass the folder of Kaggle's test photos"):
        evaluate.submission(model, tmp_path / "test", tmp_path / "submission.csv")
    assert not (tmp_path / "submission.csv").exists()

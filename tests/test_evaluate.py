"""utils.evaluate against hand-made probabilities and sklearn.metrics."""

import csv

import keras
import numpy as np
import pytest
import sklearn.metrics
import tensorflow as tf
from PIL import Image, ImageOps

from utils import evaluate, images

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
    np.testing.assert_array_equal(evaluate.most_uncertain(predictions, 3), [3, 2, 7])


def test_most_confident_incorrect_per_predicted_class(predictions):
    # wrongly called dogs: image 6 (0.72) before image 2 (0.55)
    np.testing.assert_array_equal(evaluate.most_confident_incorrect(predictions, 1), [6, 2])
    # wrongly called cats: image 7 (P(cat) 0.70) before image 3 (0.52)
    np.testing.assert_array_equal(evaluate.most_confident_incorrect(predictions, 0), [7, 3])


def test_most_confident_correct_per_class(predictions):
    np.testing.assert_array_equal(evaluate.most_confident_correct(predictions, 1), [5, 0])
    np.testing.assert_array_equal(evaluate.most_confident_correct(predictions, 0), [4, 1])


def test_random_picks_are_right_or_wrong_and_reproducible(predictions):
    correct = evaluate.random_correct(predictions, 3, seed=1)
    wrong = evaluate.random_incorrect(predictions, 10, seed=1)
    assert set(correct) <= {0, 1, 4, 5} and len(correct) == 3
    assert sorted(wrong) == [2, 3, 6, 7]
    np.testing.assert_array_equal(correct, evaluate.random_correct(predictions, 3, seed=1))


def test_error_panels_has_the_five_kinds(predictions):
    titles = list(evaluate.error_panels(predictions))
    assert titles[:2] == ["random correct", "random incorrect"] and titles[-1] == "most uncertain"
    assert "most confident correct: cats" in titles
    assert "most confident incorrect: predicted dogs" in titles


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


def test_submission_rejects_missing_or_misnamed_images(tmp_path):
    with pytest.raises(ValueError, match="no test images"):
        evaluate.submission(None, tmp_path, tmp_path / "s.csv")
    Image.new("RGB", (8, 8)).save(tmp_path / "cat.1.jpg")
    with pytest.raises(ValueError, match="named <id>.jpg"):
        evaluate.submission(None, tmp_path, tmp_path / "s.csv")


def test_load_image_gives_the_pixels_the_training_pipeline_gives(tmp_path):
    from utils import pipeline

    rng = np.random.default_rng(3)
    for class_name, size in (("cats", (57, 31)), ("dogs", (20, 90))):
        (tmp_path / class_name).mkdir()
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(tmp_path / class_name / "0.jpg")
    dataset = pipeline.image_dataset(tmp_path, (24, 40), batch_size=2, shuffle=False)
    images, _ = next(iter(dataset))
    for index, path in enumerate(dataset.file_paths):
        np.testing.assert_array_equal(evaluate.load_image(path, (24, 40)), images[index].numpy())


@pytest.mark.parametrize("interpolation", ["bilinear", "area"])
def test_load_image_follows_the_pipelines_resize_method(tmp_path, interpolation):
    from utils import pipeline

    (tmp_path / "cats").mkdir()
    pixels = np.random.default_rng(4).integers(0, 256, (120, 90, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "cats" / "0.png")
    images, _ = next(iter(pipeline.image_dataset(tmp_path, 32, batch_size=1, shuffle=False,
                                                 interpolation=interpolation)))
    np.testing.assert_array_equal(evaluate.load_image(tmp_path / "cats" / "0.png", (32, 32), interpolation),
                                  images[0].numpy())


@pytest.mark.parametrize("orientation", range(1, 9))
def test_load_image_turns_a_phone_photo_upright_as_pil_does(tmp_path, orientation):
    pixels = np.random.default_rng(orientation).integers(0, 256, (6, 10, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[images.ORIENTATION_TAG] = orientation
    image.save(tmp_path / "phone.png", exif=exif)  # PNG: lossless, so the pixels compare exactly
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "phone.png")).convert("RGB"))
    loaded = evaluate.load_image(tmp_path / "phone.png", expected.shape[:2])
    np.testing.assert_array_equal(loaded, expected.astype(np.float32))


def test_the_training_pipeline_turns_phone_photos_upright_as_load_image_does(tmp_path):
    from utils import pipeline

    rng = np.random.default_rng(5)
    for orientation in range(1, 9):
        pixels = rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)
        pixels[:10, :10] = 255  # a white corner, so that every turn looks different
        image = Image.fromarray(pixels)
        exif = image.getexif()
        exif[images.ORIENTATION_TAG] = orientation
        folder = tmp_path / ("cats" if orientation % 2 else "dogs")
        folder.mkdir(exist_ok=True)
        image.save(folder / f"{orientation}.png", exif=exif)
    dataset = pipeline.image_dataset(tmp_path, 32, batch_size=8, shuffle=False)
    batch = next(iter(dataset))[0].numpy()
    for index, path in enumerate(dataset.file_paths):
        expected = evaluate.load_image(path, (32, 32))  # turned first, then resized
        assert np.abs(batch[index] - expected).max() <= 1, path  # the same, up to rounding
        as_stored = tf.image.resize(np.asarray(Image.open(path).convert("RGB")), (32, 32)).numpy()
        if not path.endswith("1.png"):
            assert np.abs(batch[index] - as_stored).max() > 50, path  # it really was turned

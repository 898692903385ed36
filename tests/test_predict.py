"""utils.predict: "is it a bird?" on image files of any size, and clear refusals."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

from utils import birds, classifiers, cli, images, paths, predict


def redness_model():
    """A fixed 2-way classifier: P(bird) grows with how red the image is (no training)."""
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.layers[-1].set_weights([np.array([[-4.0, 4.0], [2.0, -2.0], [2.0, -2.0]]), np.zeros(2)])
    return model


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "best.keras"
    redness_model().save(path)
    return path


@pytest.fixture
def photos(tmp_path):
    """A red PNG of 57x23 (RGBA) and a blue grayscale-free JPEG of 101x37."""
    red = Image.new("RGBA", (57, 23), (230, 20, 20, 255))
    red.save(tmp_path / "red.png")
    blue = Image.new("RGB", (101, 37), (10, 30, 220))
    blue.paste((230, 20, 20), (0, 0, 10, 37))  # a red strip the centre crop cuts away
    blue.save(tmp_path / "blue.jpg", quality=95)
    return tmp_path / "red.png", tmp_path / "blue.jpg"


def reference_probability(path):
    """What the model should say: PIL's centre square crop, Lanczos to 32x32, then the weights."""
    image = Image.open(path).convert("RGB")
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    pixels = np.asarray(image.crop((left, top, left + side, top + side)).resize((32, 32), Image.LANCZOS),
                        dtype=float) / 255
    red, green, blue = pixels.reshape(-1, 3).mean(axis=0)
    logits = np.array([-4 * red + 2 * green + 2 * blue, 4 * red - 2 * green - 2 * blue])
    return float(np.exp(logits[1]) / np.exp(logits).sum())


def test_photos_are_prepared_as_the_cub_birds_were(photos, tmp_path):
    image = images.load_photo(photos[1], (32, 32), **birds.PHOTO_PREPARATION)
    assert image.shape == (32, 32, 3) and image.dtype == np.float32
    assert image[..., 2].min() > 180 and image[..., 0].max() < 60  # the red strip was cropped off
    pixels = np.zeros((40, 80, 3), np.uint8)
    pixels[:, :40] = (255, 0, 0)  # stored landscape: red on the left, blue on the right
    pixels[:, 40:] = (0, 0, 255)
    portrait = Image.fromarray(pixels)
    exif = portrait.getexif()
    exif[0x0112] = 6  # "turn 90 degrees clockwise to view": a portrait photo, red on top
    portrait.save(tmp_path / "portrait.png", exif=exif)
    upright = images.load_photo(tmp_path / "portrait.png", (32, 32), **birds.PHOTO_PREPARATION)
    assert upright[:8, :, 0].min() > 200 and upright[-8:, :, 2].min() > 200


def test_answers_match_the_model_on_png_and_jpeg_of_odd_sizes(model_path, photos, capsys):
    assert predict.main([str(model_path), *map(str, photos)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{photos[0]}: bird (P(bird) = ")
    assert lines[1].startswith(f"{photos[1]}: not a bird (P(bird) = ")
    answers, errors = predict.is_it_a_bird(keras.models.load_model(model_path), photos, 0.5)
    assert not errors
    for answer, path in zip(answers, photos):
        assert answer.probability == pytest.approx(reference_probability(path), abs=1e-4)
        assert f"{answer.probability:.1%}" in lines[photos.index(path)]


def test_threshold_from_the_lessons_metrics_or_the_command_line(model_path, photos, capsys):
    (model_path.parent / "metrics.json").write_text(json.dumps({"threshold": 0.999}))
    try:
        predict.main([str(model_path), str(photos[0])])
        assert ": not a bird" in capsys.readouterr().out  # red, but not sure enough for 0.999
        predict.main([str(model_path), str(photos[0]), "--threshold", "0.2"])
        assert ": bird" in capsys.readouterr().out
    finally:
        (model_path.parent / "metrics.json").unlink()


def test_a_non_image_and_a_missing_file_get_clear_messages(model_path, photos, tmp_path, capsys):
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a photo")
    code = predict.main([str(model_path), str(text), str(tmp_path / "missing.png"), str(photos[0])])
    captured = capsys.readouterr()
    assert code == 1
    assert f"error: {text} is not an image this kit can read" in captured.err
    assert "pass a JPEG, PNG" in captured.err
    assert f"{tmp_path / 'missing.png'}: no such file" in captured.err
    assert captured.out.startswith(f"{photos[0]}: bird")  # the good file is still answered


def test_a_huge_image_and_a_folder_get_one_line_each_and_the_good_photo_its_answer(model_path, photos, tmp_path,
                                                                                      monkeypatch, capsys):
    Image.new("RGB", (300, 200), (200, 0, 0)).save(tmp_path / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)  # 60,000 pixels is then a decompression bomb
    code = predict.main([str(model_path), str(tmp_path / "huge.png"), str(tmp_path), str(photos[0])])
    captured = capsys.readouterr()
    assert code == 1 and "Traceback" not in captured.err
    assert "huge.png is too large to read safely" in captured.err and "megapixels" in captured.err
    assert f"{tmp_path} is a folder" in captured.err
    assert captured.out.startswith(f"{photos[0]}: bird")


def test_a_half_written_metrics_file_falls_back_to_the_default_threshold(model_path, tmp_path):
    model = tmp_path / "model.keras"
    model.write_bytes(model_path.read_bytes())
    (tmp_path / "metrics.json").write_text('{"threshold": 0.3, "precis')
    assert classifiers.default_threshold(model) == 0.5


@pytest.mark.parametrize("recorded, expected", [
    (0.3, 0.3), (0, 0.0), (1, 1.0),                          # a probability: the lesson's own threshold
    (2.0, 0.5), (-0.1, 0.5), (1.0001, 0.5), (float("nan"), 0.5),  # not one (--threshold refuses them): the default
    (True, 0.5), ("0.3", 0.5), (None, 0.5)])
def test_the_recorded_threshold_is_used_only_when_it_is_a_probability(tmp_path, recorded, expected):
    (tmp_path / "metrics.json").write_text(json.dumps({"threshold": recorded}))  # NaN is written as NaN
    threshold = classifiers.default_threshold(tmp_path / "model.keras")
    assert threshold == expected and type(threshold) is float


def test_a_damaged_model_file_is_called_damaged_not_missing(tmp_path, photos, capsys):
    (tmp_path / "broken.keras").write_bytes(b"PK\x03\x04 half a zip")
    assert cli.run(predict.main, [str(tmp_path / "broken.keras"), str(photos[0])]) == 2
    error = capsys.readouterr().err
    assert "is not a Keras model" in error and "no model at" not in error and "Traceback" not in error
    assert "damaged: a .keras file is a zip archive" in error and "File not found" not in error


def test_a_missing_model_says_what_to_pass_instead(tmp_path, photos, capsys):
    assert cli.run(predict.main, [str(tmp_path / "none.keras"), str(photos[0])]) == 2
    assert capsys.readouterr().err == (f"error: no model at {tmp_path / 'none.keras'}: pass a .keras model file, or a "
                                       "lesson's folder in models/ (such as models/05_bird_classifier) or its name.\n")


def test_the_command_line_entry_point(model_path, photos):
    result = subprocess.run([sys.executable, "-m", "utils.predict", str(model_path), str(photos[1])],
                            capture_output=True, text=True, cwd=paths.ROOT, timeout=120,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{photos[1]}: not a bird (P(bird) = ")


def test_a_lesson_folder_gives_its_best_full_run_and_says_which(photos, tmp_path, monkeypatch, capsys):
    from utils import runs

    monkeypatch.setattr(paths, "MODELS", tmp_path / "models")
    assert cli.run(predict.main, ["05_bird_classifier", str(photos[0])]) == 2
    assert "no finished run of 05_bird_classifier" in capsys.readouterr().err
    full = runs.start("05_bird_classifier", sample=False)
    redness_model().save(full.model_path)
    (full.folder / "metrics.json").write_text(json.dumps({"threshold": 0.9}))
    runs.finish(full, 0.8, "f1")
    sample = runs.start("05_bird_classifier", sample=True)  # a later sample run: not the one used
    keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
                      keras.layers.Dense(2, activation="softmax")]).save(sample.model_path)
    runs.finish(sample, 0.99, "f1")
    for given in ("05_bird_classifier", str(tmp_path / "models" / "05_bird_classifier")):
        assert predict.main([given, str(photos[0])]) == 0
        captured = capsys.readouterr()
        assert f"using {full.model_path} (the best full run, {full.name})" in captured.err
        assert "threshold 0.90" in captured.out  # the full run's own threshold


def saved_model(path, input_shape, outputs, activation="softmax"):
    inputs = keras.Input(input_shape)
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    keras.Model(inputs, keras.layers.Dense(outputs, activation=activation)(x)).save(path)
    return path


def one_error_line(argv, capsys):
    """Runs the command line as `python -m utils.predict` would; returns (exit status, its one stderr line)."""
    code = cli.run(predict.main, argv)
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err and "\x1b[" not in captured.err
    assert captured.err.count("\n") == 1, captured.err
    return code, captured.err


def test_a_model_with_other_than_one_or_two_outputs_is_refused_before_any_photo_is_read(tmp_path, capsys):
    model = saved_model(tmp_path / "ten.keras", (32, 32, 3), 10)
    code, error = one_error_line([str(model), *(str(tmp_path / f"{name}.jpg") for name in "abc")], capsys)
    assert code == 2
    assert error == (f"error: {model} gives outputs of shape (None, 10): pass a bird classifier with 1 (sigmoid) "
                     "or 2 (softmax) outputs, such as lesson 5's (models/05_bird_classifier).\n")


@pytest.mark.parametrize("p, verdict", [(0.8, "bird"), (0.3, "not a bird")])
def test_a_sigmoid_model_with_one_output_answers_with_its_probability(tmp_path, photos, capsys, p, verdict):
    inputs = keras.Input((32, 32, 3))
    output = keras.layers.Dense(1, activation="sigmoid", kernel_initializer="zeros",  # P(bird) = p for any photo
                                bias_initializer=keras.initializers.Constant(np.log(p / (1 - p))))
    keras.Model(inputs, output(keras.layers.GlobalAveragePooling2D()(inputs))).save(tmp_path / "sigmoid.keras")
    assert predict.main([str(tmp_path / "sigmoid.keras"), str(photos[0])]) == 0
    assert capsys.readouterr().out == f"{photos[0]}: {verdict} (P(bird) = {p:.1%}, threshold 0.50)\n"


def test_a_model_for_gray_images_is_refused_in_one_line(tmp_path, photos, capsys):
    model = saved_model(tmp_path / "gray.keras", (28, 28, 1), 2)
    code, error = one_error_line([str(model), str(photos[0])], capsys)
    assert code == 2
    assert error == (f"error: {model} takes input of shape (None, 28, 28, 1), not fixed-size colour photos: pass a "
                     "model of (batch, height, width, 3) images, such as lesson 5's (models/05_bird_classifier).\n")


def test_a_model_without_a_fixed_input_size_is_refused_in_one_line(tmp_path, photos, capsys):
    model = saved_model(tmp_path / "anysize.keras", (None, None, 3), 2)
    code, error = one_error_line([str(model), str(photos[0])], capsys)
    assert code == 2
    assert error.startswith(f"error: {model} takes input of shape (None, None, None, 3), not fixed-size colour "
                            "photos:")


def test_a_folder_that_is_not_a_lessons_folder_or_a_file_of_another_kind_is_refused(tmp_path, photos, capsys):
    (tmp_path / "folder.keras").mkdir()
    for given in (tmp_path / "folder.keras", photos[0]):
        code, error = one_error_line([str(given), str(photos[0])], capsys)
        assert code == 2
        assert error.startswith(f"error: {given} is neither a .keras model file nor a lesson's folder in ")
        assert "no model at" not in error


def test_a_name_that_is_not_a_lesson_suggests_lesson_5_only(photos, capsys):
    code, error = one_error_line(["05_bird_clasifier", str(photos[0])], capsys)
    assert code == 2
    assert error == ("error: no lesson called 05_bird_clasifier: pass 05_bird_classifier (or its folder in models/), "
                     "or a .keras model file.\n")
    assert "03_cnn_from_scratch" not in error and "04_vgg16_finetune" not in error


def finished_run(lesson, model, metrics=None, sample=False):
    """A finished run of `lesson` in `paths.MODELS` holding `model` (and `metrics` as its metrics.json)."""
    from utils import runs

    run = runs.start(lesson, sample=sample)
    model.save(run.model_path)
    if metrics is not None:
        (run.folder / "metrics.json").write_text(json.dumps(metrics))
    runs.finish(run, 0.9, "val_accuracy")
    return run


@pytest.mark.parametrize("lesson", ["03_cnn_from_scratch", "04_vgg16_finetune"])
@pytest.mark.parametrize("given", ["folder", "name"])
def test_another_lessons_folder_or_name_is_refused_whether_it_has_a_run_or_not(photos, tmp_path, monkeypatch,
                                                                                capsys, lesson, given):
    monkeypatch.setattr(paths, "MODELS", tmp_path / "models")
    argument = str(tmp_path / "models" / lesson) if given == "folder" else lesson
    expected = (f"error: {tmp_path / 'models' / lesson} holds lesson {lesson}'s models, not a bird classifier: "
                "utils.predict answers \"is it a bird?\" with lesson 5's model: pass models/05_bird_classifier "
                "(or its name), or the model.keras of one of its runs.\n")
    (tmp_path / "models" / lesson).mkdir(parents=True)  # a fresh clone's empty folder: no "run lesson 3 first"
    assert one_error_line([argument, str(photos[0])], capsys) == (2, expected)
    finished_run(lesson, redness_model(), {"class_counts": {"dogs": 8, "cats": 8}})  # a cat/dog model that says
    assert one_error_line([argument, str(photos[0])], capsys) == (2, expected)       # "bird" for red photos


def test_a_cat_and_dog_model_file_is_refused_by_the_classes_its_metrics_record(photos, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(paths, "MODELS", tmp_path / "models")
    run = finished_run("03_cnn_from_scratch", redness_model(), {"class_counts": {"dogs": 8, "cats": 8}})
    copy = tmp_path / "elsewhere" / "model.keras"  # copied out of models/ with its metrics.json
    copy.parent.mkdir()
    copy.write_bytes(run.model_path.read_bytes())
    (copy.parent / "metrics.json").write_bytes((run.folder / "metrics.json").read_bytes())
    for model in (run.model_path, copy):
        code, error = one_error_line([str(model), str(photos[0])], capsys)
        assert code == 2
        assert error == (f"error: {model} is a classifier of cats, dogs (its metrics.json says), not of not bird and "
                         "bird: utils.predict needs lesson 5's bird classifier: pass models/05_bird_classifier, or "
                         "the model.keras of one of its runs.\n")
    with pytest.raises(ValueError, match="is a classifier of cats, dogs"):
        predict.load_model(copy)


def test_a_model_in_lesson_4s_folder_is_refused_though_its_metrics_record_no_classes(photos, tmp_path, monkeypatch,
                                                                                      capsys):
    monkeypatch.setattr(paths, "MODELS", tmp_path / "models")
    run = finished_run("04_vgg16_finetune", redness_model(), {"test_accuracy": 0.9})  # lesson 4 records no classes
    code, error = one_error_line([str(run.model_path), str(photos[0])], capsys)
    assert code == 2
    assert error == (f"error: {run.model_path} is a model of lesson 04_vgg16_finetune, not a bird classifier: "
                     "utils.predict needs lesson 5's: pass models/05_bird_classifier, or the model.keras of one of "
                     "its runs.\n")


def test_lesson_5s_model_is_taken_by_its_classes_or_its_folder_and_a_bare_file_with_a_note(photos, tmp_path,
                                                                                          monkeypatch, capsys):
    monkeypatch.setattr(paths, "MODELS", tmp_path / "models")
    lesson5 = {"class_counts": {"train": {"not bird": 3, "bird": 1}, "valid": {"not bird": 1, "bird": 1}},
               "threshold": 0.5}
    run = finished_run("05_bird_classifier", redness_model(), lesson5)
    for given in ("05_bird_classifier", str(run.model_path)):
        assert predict.main([given, str(photos[0])]) == 0
        captured = capsys.readouterr()
        assert captured.out.startswith(f"{photos[0]}: bird") and "note:" not in captured.err
    (run.folder / "metrics.json").unlink()  # as lesson 5 loads it, before it writes metrics.json
    assert classifiers.check_bird_classes(run.model_path) is True
    assert predict.load_model(run.model_path).output_shape == (None, 2)
    bare = tmp_path / "mine" / "model.keras"  # a model saved by hand: nothing says what it classifies
    bare.parent.mkdir()
    bare.write_bytes(run.model_path.read_bytes())
    assert predict.main([str(bare), str(photos[0])]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{photos[0]}: bird")
    assert captured.err.splitlines() == [
        f"using {bare}",
        f"note: nothing records the classes of {bare} (no class_counts in a metrics.json beside it, and it is not "
        "in a lesson's folder in models/): its last output is read as P(bird)."]


def test_the_command_refuses_lesson_3s_folder_in_one_line(photos, tmp_path):
    """What a learner typed: `python -m utils.predict models/03_cnn_from_scratch some_cat.jpg`."""
    (tmp_path / "models" / "03_cnn_from_scratch").mkdir(parents=True)
    result = subprocess.run([sys.executable, "-m", "utils.predict", "models/03_cnn_from_scratch", str(photos[0])],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(paths.ROOT),
                                 "COURSE_MODELS_DIR": str(tmp_path / "models")})
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {tmp_path / 'models' / '03_cnn_from_scratch'} holds lesson 03_cnn_from_scratch's "
                      "models, not a bird classifier: utils.predict answers \"is it a bird?\" with lesson 5's "
                      "model: pass models/05_bird_classifier (or its name), or the model.keras of one of its runs."]


def test_an_empty_model_name_is_refused(photos, capsys):
    code, error = one_error_line(["", str(photos[0])], capsys)
    assert code == 2 and error.startswith("error: an empty model name:") and "main" not in error


def test_an_empty_image_path_is_refused_before_any_photo_is_answered(model_path, photos, capsys):
    with pytest.raises(SystemExit) as exited:
        predict.main([str(model_path), str(photos[0]), ""])  # "" would be the current folder
    captured = capsys.readouterr()
    assert exited.value.code == 2 and captured.out == "" and "Traceback" not in captured.err
    assert captured.err.splitlines()[-1] == ("python -m utils.predict: error: an empty image path: pass the image "
                                             "files to ask about (JPEG, PNG, ...)")


@pytest.mark.parametrize("damage", ["", "{\"best\": 5}", "{\"latest\": \"runs/"])
def test_a_damaged_run_index_still_gives_the_best_full_run(photos, tmp_path, monkeypatch, capsys, damage):
    from utils import runs

    monkeypatch.setattr(paths, "MODELS", tmp_path / "models")
    full = runs.start("05_bird_classifier", sample=False)
    redness_model().save(full.model_path)
    (full.folder / "metrics.json").write_text(json.dumps({"threshold": 0.9}))
    runs.finish(full, 0.8, "val_f1")
    sample = runs.start("05_bird_classifier", sample=True)
    saved_model(sample.model_path, (32, 32, 3), 2)
    (sample.folder / "metrics.json").write_text(json.dumps({"threshold": 0.1}))
    runs.finish(sample, 0.99, "val_f1")
    (tmp_path / "models" / "05_bird_classifier" / "runs.json").write_text(damage)
    assert predict.main(["05_bird_classifier", str(photos[0])]) == 0
    captured = capsys.readouterr()
    assert f"using {full.model_path} (the best full run, {full.name})" in captured.err
    assert "was damaged" in captured.err and "threshold 0.90" in captured.out


def test_a_mistake_on_the_command_line_is_told_before_tensorflow_loads():
    # TensorFlow prints several log lines as it loads: a wrong model or lesson name must not wait for them
    result = subprocess.run([sys.executable, "-m", "utils.predict", "03_cnn_from_scratch", "photo.jpg"],
                            cwd=paths.ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: " + str(paths.MODELS / "03_cnn_from_scratch") + " holds lesson 03_cnn_from_scratch's models, not a "
        "bird classifier: utils.predict answers \"is it a bird?\" with lesson 5's model: pass "
        "models/05_bird_classifier (or its name), or the model.keras of one of its runs."]


def test_lesson_4s_model_with_its_own_preprocessing_layer_loads_in_a_fresh_process(tmp_path):
    from utils import transfer

    inputs = keras.Input((32, 32, 3))
    features = keras.layers.GlobalAveragePooling2D()(transfer.VggPreprocess(name="preprocess")(inputs))
    keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(features)).save(tmp_path / "model.keras")
    # a new Python, which has not imported utils.transfer (utils.predict and utils.serve load models through read_model)
    code = "import sys; from utils import classifiers; print(classifiers.read_model(sys.argv[1]).layers[1].name)"
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "model.keras")], capture_output=True,
                            text=True, cwd=paths.ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-1] == "preprocess"

"""Is it a bird? `python -m utils.predict MODEL IMAGE...` runs lesson 5's classifier on image files of any size.

Which model, its classes and threshold, and how its photos are prepared: `utils.classifiers`, which `utils.serve`
shares.
"""

import argparse
import dataclasses
import pathlib
import sys

import numpy as np

from utils import birds, classifiers, images


@dataclasses.dataclass
class Answer:
    """One image's verdict."""

    path: pathlib.Path
    probability: float  # P(bird)
    threshold: float

    @property
    def is_bird(self):
        return self.probability >= self.threshold

    def __str__(self):
        verdict = "bird" if self.is_bird else "not a bird"
        return f"{self.path}: {verdict} (P(bird) = {self.probability:.1%}, threshold {self.threshold:.2f})"


def load_model(path):
    """Loads lesson 5's bird classifier that `path` names (`classifiers.find_model`), refused in one line (ValueError,
    FileNotFoundError) when it is another classifier (`classifiers.check_bird_classes`) or one `is_it_a_bird` cannot
    use."""
    model_file = classifiers.find_model(path, birds_only=True)[0]
    classifiers.check_bird_classes(model_file)
    return classifiers.read_model(model_file, birds_only=True)


def is_it_a_bird(model, image_paths, threshold=0.5):
    """Answers "is it a bird?" for image files of any size: P(bird) at least `threshold` says "bird".

    Returns:
        `(answers, errors)`: a list of `Answer`, and {path: message} for the files that could not be read.
    """
    classifiers.check_classifier(model, f"the model {model.name!r}", birds_only=True)
    loaded, errors = {}, {}
    for path in map(pathlib.Path, image_paths):
        try:
            loaded[path] = images.load_photo(path, model.input_shape[1:3], **birds.PHOTO_PREPARATION)
        except (FileNotFoundError, ValueError) as error:
            errors[path] = str(error)
    if not loaded:
        return [], errors
    outputs = np.asarray(model.predict_on_batch(np.stack(list(loaded.values()))), dtype=float)
    # P(bird) is the last column: a sigmoid's one output, or a 2-way softmax's "bird" (CLASS_NAMES in utils.birds)
    return [Answer(path, float(p), threshold) for path, p in zip(loaded, outputs[:, -1])], errors


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m utils.predict",
                                     description="Is it a bird? P(bird) for each image file.")
    parser.add_argument("model", help="a lesson's folder or name (models/05_bird_classifier: its best full run, "
                                      "else its latest run, sample runs included; it says which) or a .keras file")
    parser.add_argument("images", nargs="+", help="image files (JPEG, PNG, ...), any size")
    parser.add_argument("--threshold", type=float, default=None,
                        help="P(bird) needed to say bird (default: the lesson's, from the metrics.json beside "
                             "the model; 0.5 when there is none)")
    args = parser.parse_args(argv)
    if args.threshold is not None and not 0 <= args.threshold <= 1:
        parser.error(f"--threshold {args.threshold}: use a probability between 0 and 1")
    if not all(image.strip() for image in args.images):  # "" would be the current folder
        parser.error("an empty image path: pass the image files to ask about (JPEG, PNG, ...)")
    # cli.run says what is wrong in one line
    model_file, description = classifiers.find_model(args.model, birds_only=True)
    model = load_model(model_file)
    print(f"using {description}", file=sys.stderr)
    if not classifiers.check_bird_classes(model_file):
        print(f"note: nothing records the classes of {model_file} (no class_counts in a metrics.json beside it, "
              "and it is not in a lesson's folder in models/): its last output is read as P(bird).",
              file=sys.stderr)
    threshold = classifiers.default_threshold(model_file) if args.threshold is None else args.threshold
    answers, errors = is_it_a_bird(model, args.images, threshold)
    for answer in answers:
        print(answer)
    for message in errors.values():
        print(f"error: {message}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    from utils import cli

    sys.exit(cli.run(main))

"""Does Grad-CAM point at the animal? Heat inside hand-drawn boxes on real photos.

`benchmarks/gradcam_boxes.json` holds boxes drawn by hand (by looking at each
photo on a 20-pixel grid) around the cat or dog in 34 photos of the dev set
that lesson 3's benchmark run does not train on (`real_pets.py --photos 1760`
picks 1,760 of the 4,000; these are among the other 2,240). For each photo the
model classifies correctly, this measures the share of the Grad-CAM heat (the
map resized to the photo, as the lesson's overlay does) that falls inside the
boxes, next to the share of the photo the boxes cover: a map that ignored the
animal would put about that share inside them.

    .venv/bin/python benchmarks/real_pets.py --data ../shared/data/dogscats-dev --photos 1760 --keep
    .venv/bin/python benchmarks/gradcam_boxes.py --data ../shared/data/dogscats-dev \
        --model /tmp/real_pets-*/models/03_cnn_from_scratch/runs/*/model.keras --label improved
    .venv/bin/python benchmarks/gradcam_boxes.py --data ../shared/data/dogscats-dev \
        --model /tmp/real_pets-*/models/03_cnn_from_scratch/runs/*/baseline/model.keras --label baseline

The results file holds one record per `--label`; a median density ratio of 1
means as much heat per pixel outside the boxes as inside.
"""

import argparse
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def kernel_matches(model, seeds=5):
    """Lesson 3's kernel comparison: for each of lesson 1's kernels, the best |cosine similarity|
    with the model's first-layer kernels (colours averaged), and the same for freshly initialised ones."""
    import keras
    import numpy as np

    sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=float)
    hand_made = {"box blur": np.full((3, 3), 1 / 9), "Sobel, vertical": sobel, "Sobel, horizontal": sobel.T}
    layer = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))

    def best(kernels):
        grey = kernels.mean(axis=2).reshape(-1, kernels.shape[-1]).T
        return {name: round(float(np.abs(grey @ kernel.ravel() / (np.linalg.norm(grey, axis=1)
                                                                    * np.linalg.norm(kernel))).max()), 2)
                for name, kernel in hand_made.items()}

    untrained = []
    for seed in range(seeds):  # the layer's own initializer (Glorot uniform), with another seed each time
        initializer = type(layer.kernel_initializer)(seed=seed)
        untrained.append(best(keras.ops.convert_to_numpy(initializer(tuple(layer.kernel.shape)))))
    return {"trained": best(layer.kernel.numpy()),
            "untrained_range": {name: [min(row[name] for row in untrained), max(row[name] for row in untrained)]
                                for name in hand_made}, "untrained_seeds": seeds}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a lesson 3 model.keras (cats = 0, dogs = 1)")
    parser.add_argument("--data", required=True, help="the dev set (its train/ holds cat.N.jpg and dog.N.jpg)")
    parser.add_argument("--boxes", default=str(ROOT / "benchmarks" / "gradcam_boxes.json"))
    parser.add_argument("--layer", default=None, help="layer to explain (default: the last convolution block)")
    parser.add_argument("--label", default="improved", help="the model's name in the results file")
    parser.add_argument("--trained-by", default="", help="how the model was trained (the command), recorded")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gradcam_boxes.json"))
    args = parser.parse_args(argv)

    import keras
    import numpy as np
    import tensorflow as tf

    from utils import explain
    from utils.images import load_photo, open_photo

    model = keras.models.load_model(args.model)
    layer = args.layer or explain.last_conv_layer(model)
    boxes = json.loads(pathlib.Path(args.boxes).read_text())["boxes"]
    rows = []
    for name, photo_boxes in boxes.items():
        path = pathlib.Path(args.data) / "train" / name
        label = 0 if name.startswith("cat") else 1
        batch = load_photo(path, model.input_shape[1:3])[np.newaxis]
        probabilities = model.predict_on_batch(batch)[0]
        width, height = open_photo(path).size
        heat = explain.grad_cam(model, batch, layer=layer)[0]
        heat = tf.image.resize(heat[..., None], (height, width)).numpy()[..., 0].clip(0, None)
        inside = np.zeros((height, width), bool)
        for left, top, right, bottom in photo_boxes:
            inside[top:bottom, left:right] = True
        share = float(heat[inside].sum() / heat.sum()) if heat.sum() > 0 else None
        rows.append({"photo": name, "correct": bool(probabilities.argmax() == label),
                     "probability": round(float(probabilities.max()), 3),
                     "box_area_share": round(float(inside.mean()), 3),
                     "heat_share_in_box": None if share is None else round(share, 3)})
    correct = [row for row in rows if row["correct"] and row["heat_share_in_box"] is not None]
    heat_shares = np.array([row["heat_share_in_box"] for row in correct])
    area_shares = np.array([row["box_area_share"] for row in correct])
    density = [(row["heat_share_in_box"] / row["box_area_share"])
               / max(1e-9, (1 - row["heat_share_in_box"]) / (1 - row["box_area_share"])) for row in correct]
    model_dir = pathlib.Path(args.model).resolve().parent  # lesson 3 keeps the baseline in a subfolder of its run
    run_metrics = next((folder / "metrics.json" for folder in (model_dir, model_dir.parent)
                        if (folder / "metrics.json").exists()), None)
    network = "baseline" if model_dir.name == "baseline" else "improved"
    record = {
        "model": str(args.model), "trained_by": args.trained_by, "layer": layer,
        "test_accuracy": json.loads(run_metrics.read_text())[network]["test_accuracy"] if run_metrics else None,
        "first_layer_kernels": kernel_matches(model), "photos": len(rows), "correctly_classified": len(correct),
        "mean_heat_share_in_box": round(float(heat_shares.mean()), 3),
        "mean_box_area_share": round(float(area_shares.mean()), 3),
        "photos_with_heat_share_above_half": int((heat_shares > 0.5).sum()),
        "photos_with_more_heat_in_box_than_its_area": int((heat_shares > area_shares).sum()),
        "median_heat_density_inside_over_outside": round(float(np.median(density)), 2),
        "command": "benchmarks/gradcam_boxes.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "rows": rows,
    }
    out = pathlib.Path(args.out)
    records = json.loads(out.read_text()) if out.exists() else {}
    records[args.label] = record
    out.write_text(json.dumps(records, indent=1) + "\n")
    print(json.dumps({key: value for key, value in record.items() if key != "rows"}, indent=1))


if __name__ == "__main__":
    main()

"""Checks for lesson 5's exercises (bird or not bird); registered with `utils.exercises.checker`."""

import numpy as np

from utils.exercises import answered, array, checker, returned


@checker("5.1")
def threshold_for_recall(function, labels, scores):
    answered(function, "`threshold_for_recall`: a function of (labels, scores, recall)")
    rng = np.random.default_rng(0)
    cases = [(labels, scores), (rng.integers(0, 2, 300), rng.random(300))]
    for case_labels, case_scores in cases:
        for target in (0.5, 0.8, 0.9, 0.95, 0.99):
            threshold = float(returned(function(case_labels, case_scores, target), "threshold_for_recall"))
            found = np.mean(case_scores[case_labels == 1] >= threshold)
            if found < target:
                return f"at your threshold for recall {target:.0%} it finds only {found:.1%} of the birds."
            higher = case_scores[case_scores > threshold]
            if len(higher) and np.mean(case_scores[case_labels == 1] >= higher.min()) >= target:
                return (f"for recall {target:.0%} a higher threshold ({higher.min():.4f}) still finds enough birds: "
                        "take the highest one, to keep the false alarms down.")
    return None


@checker("5.2")
def starting_bias(bias, labels):
    bias, problem = array(bias, "`bias`: the last layer's two starting biases", (2,))
    if problem:
        return problem
    share = float(np.mean(labels))
    probabilities = np.exp(bias - bias.max()) / np.exp(bias - bias.max()).sum()
    if np.isclose(probabilities[1], share, atol=1e-4):
        return None
    if np.isclose(probabilities[0], share, atol=1e-4):
        return "the two biases are the wrong way round: class 1 is 'bird'."
    return (f"with these biases the untrained network says 'bird' with probability {probabilities[1]:.3f}; "
            f"the share of birds in the training labels is {share:.3f}.")


@checker("5.3")
def balanced_weights(class_weight, labels):
    class_weight = answered(class_weight, "`class_weight`: a dict {0: weight, 1: weight}")
    if not isinstance(class_weight, dict) or set(class_weight) != {0, 1}:
        return "it should be a dict with the keys 0 and 1, as model.fit(class_weight=...) takes it."
    counts = np.bincount(np.asarray(labels, dtype=int), minlength=2)
    total = {label: class_weight[label] * counts[label] for label in (0, 1)}
    if min(class_weight.values()) <= 0:
        return "weights must be positive."
    if not np.isclose(total[0], total[1], rtol=1e-6):
        return (f"with these weights the non-birds count {total[0]:,.0f} in all and the birds {total[1]:,.0f}: "
                "balanced weights make the two classes count the same.")
    if not np.isclose(sum(total.values()), len(labels), rtol=1e-6):
        return ("the ratio is right; scale them so that the weighted count equals the number of images "
                "(as sklearn does).")
    return None

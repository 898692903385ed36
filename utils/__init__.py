"""Helpers shared by the course's lessons.

Import by module, so a reader always sees where a helper comes from::

    from utils import plots
    plots.show_images(images, titles)

Modules:
    paths:   where the kit keeps data, models and build output.
    plots:   image grids and figures (lesson 1 onwards).
    lessons: the lesson runner behind `make lessons` (`python -m utils.lessons`).
    downloads: the dataset registry and checksum-verified, resumable downloads.
    data:    organize photos into train/valid/test folders (`python -m utils.data`).
    layouts: recognize the photo layouts learners have (Kaggle, fast.ai, PetImages, class folders).
    runs:    one folder per training run; which run is the latest and the best.
    images:  find bad and odd image files; one photo file as model input (`load_photo`).
    doctor:  `python -m utils.doctor`: is this machine ready for the course?
    cli:     how every command line ends: one line and a non-zero status, never a traceback.
    training: fit with early stopping and checkpoints; devices; metrics files (lesson 3).
    evaluate: predictions, error-analysis panels, reports, Kaggle submissions (lesson 3).
"""

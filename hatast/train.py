"""Train from an option file: ``python hatast/train.py -opt options/train/X.yml`` (or ``hatast-train``)."""

if __name__ == "__main__" and not __package__:
    from _script import use_checkout_root  # type: ignore[import-not-found]

    use_checkout_root(__file__)

if __name__ == "__main__":
    from hatast.engine import main_train

    main_train()

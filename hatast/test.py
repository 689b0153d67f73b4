"""Test from an option file: ``python hatast/test.py -opt options/test/X.yml`` (or ``hatast-test``)."""

if __name__ == "__main__" and not __package__:
    from _script import use_checkout_root  # type: ignore[import-not-found]

    use_checkout_root(__file__)

if __name__ == "__main__":
    from hatast.engine import main_test

    main_test()

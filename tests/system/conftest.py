from tests.lab.fixtures import kamailio, lab_dir, peers  # noqa: F401

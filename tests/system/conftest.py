from tests.lab.fixtures import kamailio, lab_dir, linphones, peers  # noqa: F401

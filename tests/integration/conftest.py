from tests.lab.fixtures import kamailio, kamailio_401, lab_dir, lab_phone, peers  # noqa: F401

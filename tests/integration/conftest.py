from tests.lab.fixtures import (  # noqa: F401
    kamailio,
    kamailio_401,
    kamailio_tls,
    lab_dir,
    lab_phone,
    linphones,
    peers,
)

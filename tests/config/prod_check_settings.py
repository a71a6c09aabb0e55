"""Production settings with some values replaced, for tests/config/test_prod_check.py: the names and
values (JSON) come from PROD_CHECK_OVERRIDES, so that each test changes exactly one thing."""

import json
import os

from config.settings import *  # noqa: F403

for _name, _value in json.loads(os.environ.get("PROD_CHECK_OVERRIDES", "{}")).items():
    globals()[_name] = _value

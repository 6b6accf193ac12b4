import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
# device/ goes LAST: its code.py must not shadow the standard library's `code` module.
if os.path.join(ROOT, "device") not in sys.path:
    sys.path.append(os.path.join(ROOT, "device"))
pytest_plugins = ["mqtt_fixtures"]
